/*
 * NAME
 *	test_smtp - relay/smtp.c: reply lines, multi-line replies, EHLO
 *	keywords, dot-stuffing
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "relay/smtp.h"
#include "tests/unit/t.h"

/* reply_line - smtp_reply_line on a C string */
static int reply_line(const char *s, int *code, bool *last)
{
	return smtp_reply_line(s, strlen(s), code, last);
}

/* reply_add - smtp_reply_add of a C string */
static int reply_add(struct smtp_reply *r, const char *s)
{
	return smtp_reply_add(r, s, strlen(s));
}

/* well-formed reply lines: the code, and whether it is the last line */
static void smtp_reply_line_valid(void)
{
	static const struct {
		const char *line;
		int code;
		bool last;
	} c[] = {
		{ "250 OK", 250, true },
		{ "250-PIPELINING", 250, false },
		{ "250", 250, true },
		{ "250 ", 250, true },
		{ "250-", 250, false },
		{ "354 End data with <CR><LF>.<CR><LF>", 354, true },
		{ "421-closing", 421, false },
		{ "550 5.1.1 No such user", 550, true },
		{ "599 x", 599, true },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		int code = -1;
		bool last = !c[i].last;

		T_CTX("line \"%s\"", c[i].line);
		if (T_INTEQ(reply_line(c[i].line, &code, &last), 0)) {
			T_INTEQ(code, c[i].code);
			T_INTEQ(last, c[i].last);
		}
	}
}

/* malformed lines are refused with -1 */
static void smtp_reply_line_malformed(void)
{
	static const char *c[] = {
		"", "25", "2500", "abc", "650 x", "150 x", "050 x", "250x",
		"2a0 x", " 250 x", "250_x", "250\t x",
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		int code = 0;
		bool last = false;

		T_CTX("line \"%s\"", c[i]);
		T_INTEQ(reply_line(c[i], &code, &last), -1);
	}
}

/* only len bytes are read: "250-x" cut to 3 bytes is a final "250" */
static void smtp_reply_line_respects_len(void)
{
	int code = 0;
	bool last = false;

	T_INTEQ(smtp_reply_line("250-x", 3, &code, &last), 0);
	T_INTEQ(code, 250);
	T_CHECK(last);
	T_INTEQ(smtp_reply_line("250", 2, &code, &last), -1);
}

/* "250-a" "250-b" "250 c" accumulate into one line "250 a b c" */
static void smtp_reply_add_multiline(void)
{
	struct smtp_reply r = { 0 };

	T_INTEQ(reply_add(&r, "250-a"), 0);
	T_CHECK(!r.done);
	T_INTEQ(reply_add(&r, "250-b"), 0);
	T_CHECK(!r.done);
	T_INTEQ(reply_add(&r, "250 c"), 0);
	T_CHECK(r.done);
	T_INTEQ(r.code, 250);
	T_STREQ(buf_str(&r.text), "250 a b c");
	smtp_reply_free(&r);
}

/* a reply of the bare code has the code as its text */
static void smtp_reply_add_bare_code(void)
{
	struct smtp_reply r = { 0 };

	T_INTEQ(reply_add(&r, "354"), 0);
	T_CHECK(r.done);
	T_INTEQ(r.code, 354);
	T_STREQ(buf_str(&r.text), "354");
	smtp_reply_free(&r);
}

/* a line with another code does not belong: -1, reply unchanged */
static void smtp_reply_add_mismatched_code(void)
{
	struct smtp_reply r = { 0 };

	T_INTEQ(reply_add(&r, "250-a"), 0);
	T_INTEQ(reply_add(&r, "251 b"), -1);
	T_INTEQ(reply_add(&r, "550 c"), -1);
	T_INTEQ(r.code, 250);
	T_CHECK(!r.done);
	T_STREQ(buf_str(&r.text), "250 a");
	smtp_reply_free(&r);
}

/* a malformed line is refused and leaves the reply empty */
static void smtp_reply_add_malformed(void)
{
	struct smtp_reply r = { 0 };

	T_INTEQ(reply_add(&r, "hello"), -1);
	T_INTEQ(r.code, 0);
	T_CHECK(!r.done);
	T_STREQ(buf_str(&r.text), "");
	smtp_reply_free(&r);
}

/* control characters in the text become spaces (log/state-file safe) */
static void smtp_reply_add_replaces_controls(void)
{
	struct smtp_reply r = { 0 };

	T_INTEQ(reply_add(&r, "550-bad\rte\nxt\x1b[1m"), 0);
	T_INTEQ(reply_add(&r, "550 tab\there\x7f\x01"), 0);
	T_STREQ(buf_str(&r.text), "550 bad te xt [1m tab here  ");
	for (const char *p = buf_str(&r.text); *p; p++)
		if (!T_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f))
			break;
	smtp_reply_free(&r);
}

/* the text is cut at SMTP_TEXT_MAX bytes, however many lines come */
static void smtp_reply_add_bounded(void)
{
	struct smtp_reply r = { 0 };
	size_t n = 3000;
	char *line = malloc(n + 1);

	memcpy(line, "250-", 4);
	memset(line + 4, 'x', n - 4);
	line[n] = '\0';
	T_INTEQ(reply_add(&r, line), 0);
	T_INTEQ(r.text.len, SMTP_TEXT_MAX);
	T_INTEQ(strlen(buf_str(&r.text)), SMTP_TEXT_MAX);
	T_CHECK(strncmp(buf_str(&r.text), "250 xxx", 7) == 0);
	for (int i = 0; i < 10; i++)
		T_INTEQ(reply_add(&r, line), 0);
	T_INTEQ(reply_add(&r, "250 end"), 0);
	T_CHECK(r.done);
	T_INTEQ(r.text.len, SMTP_TEXT_MAX);
	free(line);
	smtp_reply_free(&r);
}

/* after smtp_reply_reset a new reply starts from nothing */
static void smtp_reply_reset_starts_over(void)
{
	struct smtp_reply r = { 0 };

	reply_add(&r, "250 first");
	smtp_reply_reset(&r);
	T_INTEQ(r.code, 0);
	T_CHECK(!r.done);
	T_STREQ(buf_str(&r.text), "");
	T_INTEQ(reply_add(&r, "451 4.3.0 later"), 0);
	T_INTEQ(r.code, 451);
	T_STREQ(buf_str(&r.text), "451 4.3.0 later");
	smtp_reply_free(&r);
}

#define CAP(field) offsetof(struct smtp_caps, field)

/* caps_only - c has exactly the flag at off set (SIZE aside) */
static bool caps_only(const struct smtp_caps *c, size_t off)
{
	static const size_t flags[] = {
		CAP(pipelining), CAP(eightbit), CAP(dsn), CAP(smtputf8),
		CAP(starttls), CAP(auth), CAP(enhanced), CAP(size),
		CAP(chunking),
	};

	for (size_t i = 0; i < sizeof(flags) / sizeof(*flags); i++) {
		bool set = *(const bool *)((const char *)c + flags[i]);

		if (set != (flags[i] == off))
			return false;
	}
	return true;
}

/* each known keyword sets its flag and only that one, in any case */
static void smtp_caps_keywords(void)
{
	static const struct {
		const char *kw;
		size_t off;
	} c[] = {
		{ "PIPELINING", CAP(pipelining) },
		{ "pipelining", CAP(pipelining) },
		{ "8BITMIME", CAP(eightbit) },
		{ "8bitmime", CAP(eightbit) },
		{ "DSN", CAP(dsn) },
		{ "SMTPUTF8", CAP(smtputf8) },
		{ "STARTTLS", CAP(starttls) },
		{ "StartTLS", CAP(starttls) },
		{ "AUTH PLAIN LOGIN", CAP(auth) },
		{ "AUTH=LOGIN", CAP(auth) },
		{ "auth plain", CAP(auth) },
		{ "ENHANCEDSTATUSCODES", CAP(enhanced) },
		{ "SIZE", CAP(size) },
		{ "SIZE 1000", CAP(size) },
		{ "CHUNKING", CAP(chunking) },
		{ "chunking", CAP(chunking) },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct smtp_caps caps = { 0 };

		T_CTX("keyword \"%s\"", c[i].kw);
		smtp_caps_line(&caps, c[i].kw, strlen(c[i].kw));
		T_CHECK(caps_only(&caps, c[i].off));
	}
}

/* SIZE records the announced limit; no number means no limit (0) */
static void smtp_caps_size(void)
{
	static const struct {
		const char *kw;
		unsigned long max;
	} c[] = {
		{ "SIZE 1000", 1000 },
		{ "size 35882577", 35882577 },
		{ "SIZE", 0 },
		{ "SIZE 0", 0 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct smtp_caps caps = { 0 };

		T_CTX("keyword \"%s\"", c[i].kw);
		caps.size_max = 12345;
		smtp_caps_line(&caps, c[i].kw, strlen(c[i].kw));
		T_CHECK(caps.size);
		T_INTEQ(caps.size_max, c[i].max);
	}
}

/* a longer or unknown keyword sets nothing */
static void smtp_caps_not_fooled(void)
{
	static const char *c[] = {
		"PIPELININGX", "PIPELIN", "X-PIPELINING", "DSNX", "AUTHX",
		"SIZEX 1000", "STARTTLS2", "8BITMIMEX", "CHUNKINGX", "VRFY",
		"HELP", "", " PIPELINING",
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct smtp_caps caps = { 0 };

		T_CTX("keyword \"%s\"", c[i]);
		smtp_caps_line(&caps, c[i], strlen(c[i]));
		T_CHECK(caps_only(&caps, (size_t)-1));
		T_INTEQ(caps.size_max, 0);
	}
}

/* only len bytes are read: "PIPELININGX" cut to 10 is PIPELINING */
static void smtp_caps_respects_len(void)
{
	struct smtp_caps caps = { 0 };

	smtp_caps_line(&caps, "PIPELININGX", 10);
	T_CHECK(caps.pipelining);
}

/* stuff - smtp_stuff of a C string from state *bol into a static buffer */
static const char *stuff(const char *in, bool *bol, size_t *outlen)
{
	static char out[1024];

	*outlen = smtp_stuff(in, strlen(in), out, bol);
	out[*outlen] = '\0';
	return out;
}

/* a '.' at the start of a line is doubled, nothing else changes */
static void smtp_stuff_line_start_dots(void)
{
	static const struct {
		const char *in, *out;
		bool bol_after;
	} c[] = {
		{ ".\r\n", "..\r\n", true },
		{ "a\r\n.b\r\n", "a\r\n..b\r\n", true },
		{ "..", "...", false },
		{ "a.b\r\nc. d.\r\n", "a.b\r\nc. d.\r\n", true },
		{ "x\r\n.\r\n.", "x\r\n..\r\n..", false },
		{ "\r\n\r\n.", "\r\n\r\n..", false },
		{ "", "", true },
		{ "no newline", "no newline", false },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		bool bol = true;
		size_t n;
		const char *out;

		T_CTX("input \"%s\"", c[i].in);
		out = stuff(c[i].in, &bol, &n);
		T_MEMEQ(out, n, c[i].out, strlen(c[i].out));
		T_INTEQ(bol, c[i].bol_after);
	}
}

/* not at a line start (bol false on entry), a leading '.' is kept */
static void smtp_stuff_not_at_line_start(void)
{
	bool bol = false;
	size_t n;

	T_STREQ(stuff(".x\r\n.y", &bol, &n), ".x\r\n..y");
	T_INTEQ(n, 7);
}

/* the line-start state carries across calls split at any byte */
static void smtp_stuff_split_calls(void)
{
	static const char msg[] =
	    ".a\r\nb.\r\n.\r\n..\r\nx\r\n.\r\n.";
	char whole[2 * sizeof(msg)], split[2 * sizeof(msg)];
	size_t len = strlen(msg), wlen, slen;
	bool bol = true;

	wlen = smtp_stuff(msg, len, whole, &bol);
	for (size_t k = 0; k <= len; k++) {
		T_CTX("split at %zu", k);
		bol = true;
		slen = smtp_stuff(msg, k, split, &bol);
		slen += smtp_stuff(msg + k, len - k, split + slen, &bol);
		T_MEMEQ(split, slen, whole, wlen);
	}
	T_CTX("the two named split points");
	bol = true;
	slen = smtp_stuff(".\r", 2, split, &bol);
	T_CHECK(!bol);
	slen += smtp_stuff("\n.", 2, split + slen, &bol);
	T_MEMEQ(split, slen, "..\r\n..", 6);
}

/* the returned length counts the added dots and fits in 2n */
static void smtp_stuff_output_length(void)
{
	char out[16];
	bool bol = true;

	T_INTEQ(smtp_stuff(".\n.\n", 4, out, &bol), 6);
	T_MEMEQ(out, 6, "..\n..\n", 6);
	bol = true;
	T_INTEQ(smtp_stuff(".", 1, out, &bol), 2);
	bol = true;
	T_INTEQ(smtp_stuff("abc", 3, out, &bol), 3);
	bol = true;
	T_INTEQ(smtp_stuff("", 0, out, &bol), 0);
	T_CHECK(bol);
}

const struct t_test t_smtp_tests[] = {
	T_ENTRY(smtp_reply_line_valid),
	T_ENTRY(smtp_reply_line_malformed),
	T_ENTRY(smtp_reply_line_respects_len),
	T_ENTRY(smtp_reply_add_multiline),
	T_ENTRY(smtp_reply_add_bare_code),
	T_ENTRY(smtp_reply_add_mismatched_code),
	T_ENTRY(smtp_reply_add_malformed),
	T_ENTRY(smtp_reply_add_replaces_controls),
	T_ENTRY(smtp_reply_add_bounded),
	T_ENTRY(smtp_reply_reset_starts_over),
	T_ENTRY(smtp_caps_keywords),
	T_ENTRY(smtp_caps_size),
	T_ENTRY(smtp_caps_not_fooled),
	T_ENTRY(smtp_caps_respects_len),
	T_ENTRY(smtp_stuff_line_start_dots),
	T_ENTRY(smtp_stuff_not_at_line_start),
	T_ENTRY(smtp_stuff_split_calls),
	T_ENTRY(smtp_stuff_output_length),
	T_END
};
