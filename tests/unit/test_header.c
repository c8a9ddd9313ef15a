/*
 * NAME
 *	test_header - message/header.c: field names, the header block
 */
#include <stdlib.h>
#include <string.h>

#include "message/header.h"
#include "tests/unit/t.h"

/* add - headers_add of a C string */
static int add(struct headers *hs, const char *line)
{
	return headers_add(hs, line, strlen(line));
}

/* valid field names: the length of the name before the colon */
static void header_name_len_valid(void)
{
	static const struct {
		const char *line;
		size_t want;
	} c[] = {
		{ "Subject: hi", 7 },
		{ "X-Mailer:x", 8 },
		{ "Subject:", 7 },
		{ "A: b", 1 },
		{ "Content-Type: text/plain; charset=utf-8", 12 },
		{ "Name : v", 4 },	/* obsolete: blanks before ':' */
		{ "Name \t : v", 4 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		T_CTX("line \"%s\"", c[i].line);
		T_INTEQ(header_name_len(c[i].line, strlen(c[i].line)),
			c[i].want);
	}
}

/* not a field: no colon, blank or control in the name, empty name */
static void header_name_len_invalid(void)
{
	static const char *c[] = {
		"no colon here",
		"Subject",
		"Na me: v",
		": v",
		"",
		" Subject: continuation",
		"\tSubject: continuation",
		"Sub\x01ject: x",
		"Gr\xc3\xbc\xc3\x9f" "e: x",
		"From alice@example.com Mon Jan 1",
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		T_CTX("line \"%s\"", c[i]);
		T_INTEQ(header_name_len(c[i], strlen(c[i])), 0);
	}
}

/* only len bytes count: a colon past len does not make a field */
static void header_name_len_respects_len(void)
{
	T_INTEQ(header_name_len("Subject: x", 7), 0);
	T_INTEQ(header_name_len("Subject: x", 8), 7);
}

/* headers_add keeps the exact text; find is case-insensitive */
static void headers_add_and_find(void)
{
	struct headers hs = { 0 };
	struct header *h;
	const char *v;
	size_t vlen = 99;

	T_INTEQ(add(&hs, "Subject: hi there"), 0);
	T_INTEQ(add(&hs, "To: a@b"), 0);
	T_INTEQ(hs.n, 2);
	T_INTEQ(hs.bytes, strlen("Subject: hi there") + 2 +
		strlen("To: a@b") + 2);
	h = headers_find(&hs, "subject");
	if (T_CHECK(h != NULL)) {
		T_STREQ(h->text, "Subject: hi there");
		T_INTEQ(h->len, strlen("Subject: hi there"));
		T_INTEQ(h->namelen, 7);
		v = header_value(h, &vlen);
		T_MEMEQ(v, vlen, " hi there", 9);
	}
	T_CHECK(headers_find(&hs, "TO") == &hs.v[1]);
	T_CHECK(headers_find(&hs, "Cc") == NULL);
	headers_free(&hs);
}

/* a name is matched whole, not as a prefix of a longer one */
static void header_is_whole_name(void)
{
	struct headers hs = { 0 };

	add(&hs, "Subject-Extra: x");
	add(&hs, "Subject: y");
	T_CHECK(headers_find(&hs, "Subj") == NULL);
	T_CHECK(headers_find(&hs, "Subject") == &hs.v[1]);
	T_CHECK(header_is(&hs.v[0], "subject-extra"));
	T_CHECK(!header_is(&hs.v[0], "Subject"));
	headers_free(&hs);
}

/* the first of several same-named headers is found */
static void headers_find_first(void)
{
	struct headers hs = { 0 };

	add(&hs, "Received: one");
	add(&hs, "Received: two");
	T_CHECK(headers_find(&hs, "received") == &hs.v[0]);
	headers_free(&hs);
}

/* the obsolete "Name : v" form is found by its name */
static void headers_find_obsolete_form(void)
{
	struct headers hs = { 0 };
	struct header *h;
	const char *v;
	size_t vlen;

	add(&hs, "Bcc : x@y");
	h = headers_find(&hs, "bcc");
	if (T_CHECK(h != NULL)) {
		v = header_value(h, &vlen);
		T_MEMEQ(v, vlen, " x@y", 4);
	}
	headers_free(&hs);
}

/* a continuation line is joined with CRLF, its WSP kept */
static void headers_fold_keeps_crlf_wsp(void)
{
	struct headers hs = { 0 };
	const char *want = "To: a@b,\r\n\tc@d,\r\n  e@f";
	const char *v;
	size_t vlen;

	add(&hs, "Subject: s");
	add(&hs, "To: a@b,");
	T_INTEQ(headers_fold(&hs, "\tc@d,", 5), 0);
	T_INTEQ(headers_fold(&hs, "  e@f", 5), 0);
	T_INTEQ(hs.n, 2);
	T_STREQ(hs.v[1].text, want);
	T_INTEQ(hs.v[1].len, strlen(want));
	v = header_value(&hs.v[1], &vlen);
	T_MEMEQ(v, vlen, want + 3, strlen(want + 3));
	T_STREQ(hs.v[0].text, "Subject: s");
	T_INTEQ(hs.bytes, strlen("Subject: s") + 2 + strlen(want) + 2);
	headers_free(&hs);
}

/* every header of the name goes, whatever its case; others keep order */
static void headers_remove_all_bcc(void)
{
	struct headers hs = { 0 };

	add(&hs, "Bcc: one@x");
	add(&hs, "To: a@b");
	add(&hs, "bcc: two@x");
	headers_fold(&hs, " three@x", 8);
	add(&hs, "Subject: s");
	add(&hs, "BCC : four@x");
	headers_remove(&hs, "Bcc");
	if (T_INTEQ(hs.n, 2)) {
		T_STREQ(hs.v[0].text, "To: a@b");
		T_STREQ(hs.v[1].text, "Subject: s");
	}
	T_INTEQ(hs.bytes, strlen("To: a@b") + 2 + strlen("Subject: s") + 2);
	T_CHECK(headers_find(&hs, "bcc") == NULL);
	headers_free(&hs);
}

/* removing an absent name changes nothing */
static void headers_remove_absent(void)
{
	struct headers hs = { 0 };
	size_t bytes;

	add(&hs, "To: a@b");
	bytes = hs.bytes;
	headers_remove(&hs, "Bcc");
	T_INTEQ(hs.n, 1);
	T_INTEQ(hs.bytes, bytes);
	headers_free(&hs);
}

/* headers_have_prefix("Resent-") finds Resent-* fields in any case */
static void headers_have_prefix_resent(void)
{
	struct headers hs = { 0 };

	add(&hs, "From: a@b");
	add(&hs, "X-Resent-From: c@d");
	add(&hs, "Resent: no dash");
	T_CHECK(!headers_have_prefix(&hs, "Resent-"));
	add(&hs, "resent-to: e@f");
	T_CHECK(headers_have_prefix(&hs, "Resent-"));
	headers_free(&hs);

	add(&hs, "RESENT-FROM: a@b");
	T_CHECK(headers_have_prefix(&hs, "Resent-"));
	headers_free(&hs);

	T_CHECK(!headers_have_prefix(&hs, "Resent-"));
}

/* one header larger than HEADER_BLOCK_MAX is refused, nothing added */
static void headers_add_over_max(void)
{
	struct headers hs = { 0 };
	size_t n = HEADER_BLOCK_MAX + 1;
	char *big = malloc(n);

	memset(big, 'x', n);
	memcpy(big, "X-Big: ", 7);
	T_INTEQ(headers_add(&hs, big, n), -1);
	T_INTEQ(hs.n, 0);
	T_INTEQ(hs.bytes, 0);
	free(big);
	headers_free(&hs);
}

/* a fold that would pass HEADER_BLOCK_MAX is refused, header unchanged */
static void headers_fold_over_max(void)
{
	struct headers hs = { 0 };
	size_t n = HEADER_BLOCK_MAX / 2;
	char *big = malloc(n);

	memset(big, ' ', n);
	memcpy(big, "X-Big:", 6);
	T_INTEQ(headers_add(&hs, big, n), 0);
	big[0] = '\t';
	T_INTEQ(headers_fold(&hs, big, n), -1);
	T_INTEQ(hs.v[0].len, n);
	T_INTEQ(hs.bytes, n + 2);
	free(big);
	headers_free(&hs);
}

/* The block bound holds when it is reached: a line counts with its
 * CRLF, so bytes never passes HEADER_BLOCK_MAX (a regression test: the
 * bound used to wrap around and let the block grow without limit). */
static void headers_bound_holds_when_full(void)
{
	struct headers hs = { 0 };
	char *big = malloc(HEADER_BLOCK_MAX);

	memset(big, 'x', HEADER_BLOCK_MAX);
	memcpy(big, "X-Big: ", 7);
	/* a line and its CRLF must fit: MAX - 1 does not, MAX - 2 does */
	T_INTEQ(headers_add(&hs, big, HEADER_BLOCK_MAX - 1), -1);
	T_INTEQ(headers_add(&hs, big, HEADER_BLOCK_MAX - 2), 0);
	T_INTEQ(hs.bytes, HEADER_BLOCK_MAX);
	T_INTEQ(add(&hs, "To: a@b"), -1);
	T_INTEQ(headers_add(&hs, big, HEADER_BLOCK_MAX / 2), -1);
	big[0] = ' ';
	T_INTEQ(headers_fold(&hs, big, 1000), -1);
	T_CHECK(hs.bytes <= HEADER_BLOCK_MAX);
	free(big);
	headers_free(&hs);
}

const struct t_test t_header_tests[] = {
	T_ENTRY(header_name_len_valid),
	T_ENTRY(header_name_len_invalid),
	T_ENTRY(header_name_len_respects_len),
	T_ENTRY(headers_add_and_find),
	T_ENTRY(header_is_whole_name),
	T_ENTRY(headers_find_first),
	T_ENTRY(headers_find_obsolete_form),
	T_ENTRY(headers_fold_keeps_crlf_wsp),
	T_ENTRY(headers_remove_all_bcc),
	T_ENTRY(headers_remove_absent),
	T_ENTRY(headers_have_prefix_resent),
	T_ENTRY(headers_add_over_max),
	T_ENTRY(headers_fold_over_max),
	T_ENTRY(headers_bound_holds_when_full),
	T_END
};
