/*
 * NAME
 *	test_addr - message/addr.c: address lists, envelope checks,
 *	qualification, domains
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message/addr.h"
#include "util/buf.h"
#include "tests/unit/t.h"
#include "util/strlist.h"

/* parsed - addr_parse_list(text) joined with "|" (static buffer) */
static const char *parsed(const char *text)
{
	static char out[8192];
	struct strlist l = STRLIST_INIT;
	struct buf b = BUF_INIT(sizeof(out) - 1);

	addr_parse_list(text, strlen(text), &l);
	for (size_t i = 0; i < l.n; i++)
		buf_printf(&b, "%s%s", i ? "|" : "", l.v[i]);
	snprintf(out, sizeof(out), "%s", buf_str(&b));
	buf_free(&b);
	strlist_free(&l);
	return out;
}

struct parse_case {
	const char *in;
	const char *want;	/* addr-specs joined with "|" */
};

/* check_parse - run a table of parse cases */
static void check_parse(const struct parse_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		T_CTX("input \"%s\"", c[i].in);
		T_STREQ(parsed(c[i].in), c[i].want);
	}
}

#define CHECK_PARSE(table) check_parse(table, sizeof(table) / sizeof(*table))

/* a bare addr-spec is returned as is, surrounding blanks trimmed */
static void addr_parse_plain(void)
{
	static const struct parse_case c[] = {
		{ "a@b", "a@b" },
		{ "  a@b  ", "a@b" },
		{ "a@b,c@d", "a@b|c@d" },
		{ "a@b, c@d ,e@f", "a@b|c@d|e@f" },
		{ "a@b; c@d", "a@b|c@d" },
	};

	CHECK_PARSE(c);
}

/* "Name <a@b>": the display name is dropped, the angle-addr kept */
static void addr_parse_display_name(void)
{
	static const struct parse_case c[] = {
		{ "Name <a@b>", "a@b" },
		{ "John Q. Public <jqp@example.com>", "jqp@example.com" },
		{ "<a@b>", "a@b" },
		{ "< a@b >", "a@b" },
		{ "Name <a@b>, Other <c@d>", "a@b|c@d" },
	};

	CHECK_PARSE(c);
}

/* a quoted display name may hold ',' ':' ';' '<' without splitting */
static void addr_parse_quoted_display_name(void)
{
	static const struct parse_case c[] = {
		{ "\"Doe, John\" <j@x>, k@y", "j@x|k@y" },
		{ "\"a:b; c\" <j@x>", "j@x" },
		{ "\"<x@evil>\" <j@x>", "j@x" },
		{ "\"say \\\"hi\\\", ok\" <j@x>, k@y", "j@x|k@y" },
	};

	CHECK_PARSE(c);
}

/* comments before or after the address are dropped */
static void addr_parse_comments(void)
{
	static const struct parse_case c[] = {
		{ "a@b (Alice)", "a@b" },
		{ "(c) a@b", "a@b" },
		{ "a@b (with, comma; and: colon)", "a@b" },
		{ "Alice (the boss) <a@b>", "a@b" },
		{ "a@b (escaped \\) paren), c@d", "a@b|c@d" },
	};

	CHECK_PARSE(c);
}

/* nested comments are skipped as a whole */
static void addr_parse_nested_comments(void)
{
	static const struct parse_case c[] = {
		{ "a@b (x (y) z)", "a@b" },
		{ "(a (b (c)) d) a@b, c@d", "a@b|c@d" },
		{ "a@b (x (y, z@w) v), c@d", "a@b|c@d" },
	};

	CHECK_PARSE(c);
}

/* an empty group yields nothing */
static void addr_parse_empty_group(void)
{
	static const struct parse_case c[] = {
		{ "undisclosed-recipients:;", "" },
		{ "undisclosed-recipients: ;", "" },
	};

	CHECK_PARSE(c);
}

/* group members are returned, the group name dropped, and what follows
 * the group is parsed too */
static void addr_parse_group_members(void)
{
	static const struct parse_case c[] = {
		{ "team: a@x, b@y;, c@z", "a@x|b@y|c@z" },
		{ "team: A <a@x>, b@y;", "a@x|b@y" },
		{ "\"The Team\": a@x;", "a@x" },
	};

	CHECK_PARSE(c);
}

/* an RFC 5321 source route is removed from the angle-addr */
static void addr_parse_source_route(void)
{
	static const struct parse_case c[] = {
		{ "<@r1,@r2:u@d>", "u@d" },
		{ "Name <@r1:u@d>, v@e", "u@d|v@e" },
	};

	CHECK_PARSE(c);
}

/* folded header values (CRLF + WSP) are plain white space */
static void addr_parse_folded(void)
{
	static const struct parse_case c[] = {
		{ "a@b,\r\n\tc@d", "a@b|c@d" },
		{ "Name\r\n <a@b>,\r\n c@d", "a@b|c@d" },
		{ "\r\n\ta@b\r\n", "a@b" },
		{ "\"Doe,\r\n John\"\r\n\t<j@x>", "j@x" },
	};

	CHECK_PARSE(c);
}

/* empty and blank input yields no address */
static void addr_parse_empty(void)
{
	static const struct parse_case c[] = {
		{ "", "" },
		{ "   ", "" },
		{ "\r\n\t", "" },
		{ "(just a comment)", "" },
	};

	CHECK_PARSE(c);
}

/* commas alone yield no (empty) address */
static void addr_parse_only_commas(void)
{
	static const struct parse_case c[] = {
		{ ",", "" },
		{ ",,, ,", "" },
		{ ", a@b,,", "a@b" },
	};

	CHECK_PARSE(c);
}

/* white space inside an address is kept so the envelope check refuses it */
static void addr_parse_keeps_inner_space(void)
{
	T_STREQ(parsed("a b@c"), "a b@c");
	T_CHECK(addr_check_envelope("a b@c") != NULL);
}

/* only len bytes are read; the list is appended to, not replaced */
static void addr_parse_len_and_append(void)
{
	struct strlist l = STRLIST_INIT;

	strlist_add(&l, "first@x");
	addr_parse_list("a@b, c@d", 3, &l);
	if (T_INTEQ(l.n, 2)) {
		T_STREQ(l.v[0], "first@x");
		T_STREQ(l.v[1], "a@b");
	}
	strlist_free(&l);
}

/* Regression: a domain literal's ':' was taken for a group separator.
 * addr_parse_list("user@[IPv6:2001:db8::1]") returns "1]" (which then
 * passes addr_check_envelope) instead of the address itself. */
static void addr_parse_ipv6_domain_literal(void)
{
	static const struct parse_case c[] = {
		{ "user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]" },
		{ "<user@[IPv6:2001:db8::1]>", "user@[IPv6:2001:db8::1]" },
	};

	CHECK_PARSE(c);
}

/* normal addresses (and bare names, qualified later) may be sent */
static void addr_envelope_accepts(void)
{
	static const char *ok[] = {
		"a@b", "user+tag@example.com", "first.last@sub.example.org",
		"bob", "\"quoted\"@example.com", "j\xc3\xb6rg@example.de",
	};
	char max[ADDR_MAX + 1];

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		T_CTX("address \"%s\"", ok[i]);
		T_STREQ(addr_check_envelope(ok[i]), NULL);
	}
	T_CTX("address of exactly ADDR_MAX bytes");
	memset(max, 'a', ADDR_MAX);
	max[ADDR_MAX] = '\0';
	max[64] = '@';
	T_STREQ(addr_check_envelope(max), NULL);
}

struct envelope_case {
	const char *in;
	const char *why;	/* a word of the expected reason */
};

/* check_refused - every case is refused, for the expected reason */
static void check_refused(const struct envelope_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *why = addr_check_envelope(c[i].in);

		T_CTX("case %zu: \"%s\"", i, c[i].in);
		if (T_CHECK(why != NULL))
			T_CONTAINS(why, c[i].why);
	}
}

#define CHECK_REFUSED(t) check_refused(t, sizeof(t) / sizeof(*t))

/* CR and LF would end the SMTP command: refused */
static void addr_envelope_rejects_line_breaks(void)
{
	static const struct envelope_case c[] = {
		{ "a@b\r", "line break" },
		{ "a@b\n", "line break" },
		{ "a@b\r\nRCPT TO:<x@y>", "line break" },
		{ "\na@b", "line break" },
	};

	CHECK_REFUSED(c);
}

/* control characters other than CR/LF (NUL cannot be in a C string) */
static void addr_envelope_rejects_controls(void)
{
	static const struct envelope_case c[] = {
		{ "a\x01@b", "control" },
		{ "a@b\x1b[0m", "control" },
		{ "a@b\x7f", "control" },
		{ "a\x1f@b", "control" },
	};

	CHECK_REFUSED(c);
}

/* space and tab are refused (tab counts as a control character) */
static void addr_envelope_rejects_space(void)
{
	static const struct envelope_case c[] = {
		{ "a b@c", "space" },
		{ "a@b ", "space" },
		{ "a@b SIZE=1", "space" },
		{ "\ta@b", "control" },
		{ "a@b\tx", "control" },
	};

	CHECK_REFUSED(c);
}

/* angle brackets would end the MAIL FROM:<...> path: refused */
static void addr_envelope_rejects_angles(void)
{
	static const struct envelope_case c[] = {
		{ "<a@b", "angle" },
		{ "a@b>", "angle" },
		{ "a@b><x@y", "angle" },
	};

	CHECK_REFUSED(c);
}

/* empty, over ADDR_MAX, and an empty local part or domain are refused */
static void addr_envelope_rejects_empty_and_long(void)
{
	char longer[ADDR_MAX + 2];
	struct envelope_case c[] = {
		{ "", "empty" },
		{ longer, "too long" },
		{ "@b", "empty part" },
		{ "@", "empty part" },
		{ "a@", "empty part" },
	};

	memset(longer, 'a', ADDR_MAX + 1);
	longer[ADDR_MAX + 1] = '\0';
	longer[10] = '@';
	CHECK_REFUSED(c);
}

/* a bare name gets "@domain"; an address with '@' is copied unchanged */
static void addr_qualify_adds_domain(void)
{
	struct {
		const char *addr, *domain, *want;
	} c[] = {
		{ "bob", "example.com", "bob@example.com" },
		{ "bob@other.org", "example.com", "bob@other.org" },
		{ "bob", NULL, "bob" },
		{ "bob", "", "bob" },
		{ "", "example.com", "@example.com" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char *q = addr_qualify(c[i].addr, c[i].domain);

		T_CTX("addr \"%s\" domain \"%s\"", c[i].addr,
		      c[i].domain ? c[i].domain : "(null)");
		T_STREQ(q, c[i].want);
		free(q);
	}
}

/* Regression: addr_qualify of an address longer than 2 * ADDR_MAX returned ""
 * (or "@domain" for a bare name) instead of a copy, so the caller's
 * addr_check_envelope() reports "empty address" / "address has an empty
 * part" instead of "address too long". */
static void addr_qualify_long_address_is_copied(void)
{
	char with_at[701], bare[701];
	char *q1, *q2;

	memset(with_at, 'a', 700);
	with_at[700] = '\0';
	with_at[350] = '@';
	memset(bare, 'b', 700);
	bare[700] = '\0';
	q1 = addr_qualify(with_at, "example.com");
	q2 = addr_qualify(bare, "example.com");
	T_STREQ(q1, with_at);
	T_CONTAINS(addr_check_envelope(q1), "too long");
	T_INTEQ(strlen(q2), 700 + strlen("@example.com"));
	T_CONTAINS(addr_check_envelope(q2), "too long");
	free(q1);
	free(q2);
}

/* plausible host names are accepted, others refused */
static void addr_check_domain_table(void)
{
	static const struct {
		const char *d;
		int want;
	} c[] = {
		{ "example.com", 0 },
		{ "mail-1.example.co.uk", 0 },
		{ "localhost", 0 },
		{ "b\xc3\xbc" "cher.de", 0 },	/* UTF-8 passes */
		{ "", -1 },
		{ ".example.com", -1 },
		{ "-example.com", -1 },
		{ "exa mple.com", -1 },
		{ "exa_mple.com", -1 },
		{ "example.com\r\n", -1 },
		{ "a@b", -1 },
		{ "[127.0.0.1]", -1 },
		{ "example.com/x", -1 },
	};
	char max[255];

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		T_CTX("domain \"%s\"", c[i].d);
		T_INTEQ(addr_check_domain(c[i].d), c[i].want);
	}
	T_CTX("253 and 254 characters");
	memset(max, 'a', 254);
	max[254] = '\0';
	T_INTEQ(addr_check_domain(max), -1);
	max[253] = '\0';
	T_INTEQ(addr_check_domain(max), 0);
}

const struct t_test t_addr_tests[] = {
	T_ENTRY(addr_parse_plain),
	T_ENTRY(addr_parse_display_name),
	T_ENTRY(addr_parse_quoted_display_name),
	T_ENTRY(addr_parse_comments),
	T_ENTRY(addr_parse_nested_comments),
	T_ENTRY(addr_parse_empty_group),
	T_ENTRY(addr_parse_group_members),
	T_ENTRY(addr_parse_source_route),
	T_ENTRY(addr_parse_folded),
	T_ENTRY(addr_parse_empty),
	T_ENTRY(addr_parse_only_commas),
	T_ENTRY(addr_parse_keeps_inner_space),
	T_ENTRY(addr_parse_len_and_append),
	T_ENTRY(addr_parse_ipv6_domain_literal),
	T_ENTRY(addr_envelope_accepts),
	T_ENTRY(addr_envelope_rejects_line_breaks),
	T_ENTRY(addr_envelope_rejects_controls),
	T_ENTRY(addr_envelope_rejects_space),
	T_ENTRY(addr_envelope_rejects_angles),
	T_ENTRY(addr_envelope_rejects_empty_and_long),
	T_ENTRY(addr_qualify_adds_domain),
	T_ENTRY(addr_qualify_long_address_is_copied),
	T_ENTRY(addr_check_domain_table),
	T_END
};
