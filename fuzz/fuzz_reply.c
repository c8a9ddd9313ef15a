/*
 * NAME
 *	fuzz_reply - what a relay sends back (relay/smtp.c): reply lines,
 *	multi-line replies, EHLO keywords; and dot-stuffing
 * FEEDS
 *	The input is what a relay (or something pretending to be one)
 *	sends: it is cut into lines at LF, a CR before the LF dropped, as
 *	relay.c reads them, and each line, in a buffer of exactly its own
 *	length, goes through smtp_reply_line() and smtp_reply_add(); the
 *	lines after the first of a 250 reply also go through
 *	smtp_caps_line(), as EHLO keywords. The same input is then the
 *	message body for smtp_stuff(), in chunks whose lengths the input's
 *	bytes choose, and in one piece.
 * ASSERTS
 *	- smtp_reply_line() accepts exactly "[2-5][0-9][0-9]" optionally
 *	  followed by ' ' or '-' and text, with the right code and last-line
 *	  flag (an independent check);
 *	- smtp_reply_add() takes a line only if its code is the reply's
 *	  code; the reply text is one printable line of at most
 *	  SMTP_TEXT_MAX bytes that starts with the code;
 *	- smtp_caps_line() sets exactly the capability its keyword names,
 *	  and SIZE's limit is the number after it (saturated); nothing is
 *	  read beyond the keyword's length (digits follow it in memory, so
 *	  an over-read shows as a wrong limit even where ASan cannot see
 *	  it, as in libc's strtoul);
 *	- smtp_stuff() output, unstuffed, equals its input; no line of it
 *	  starts with a single '.'; chunking does not change it.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz/common.h"
#include "relay/smtp.h"
#include "util/buf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* exact_copy - len bytes in a heap block of exactly len bytes, so that
 * the sanitizer sees any read past them */
static char *exact_copy(const char *p, size_t len)
{
	/* 0 bytes on purpose: ASan then reports any read of an empty line */
	/* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI) */
	char *c = malloc(len);

	if (c == NULL && len)
		abort();
	if (len)
		memcpy(c, p, len);
	return c;
}

/* digits3 - the number of the three digits at p */
static int digits3(const char *p)
{
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* ref_reply_line - the reply line grammar, written independently */
static int ref_reply_line(const char *l, size_t len, int *code, bool *last)
{
	if (len < 3 || l[0] < '2' || l[0] > '5' || !isdigit((unsigned char)l[1])
	    || !isdigit((unsigned char)l[2]))
		return -1;
	if (len > 3 && l[3] != ' ' && l[3] != '-')
		return -1;
	*code = digits3(l);
	*last = len == 3 || l[3] == ' ';
	return 0;
}

/* ref_kw - keyword kw, any case, then the end, ' ' or '=' */
static bool ref_kw(const char *p, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	return n >= k && strncasecmp(p, kw, k) == 0 &&
	    (n == k || p[k] == ' ' || p[k] == '=');
}

/* ref_caps - what smtp_caps_line() should record for one keyword */
static void ref_caps(struct smtp_caps *c, const char *p, size_t n)
{
	static const char *const kws[] = { "PIPELINING", "8BITMIME", "DSN",
		"SMTPUTF8", "STARTTLS", "AUTH", "ENHANCEDSTATUSCODES",
		"CHUNKING", "SIZE" };
	bool *flags[] = { &c->pipelining, &c->eightbit, &c->dsn, &c->smtputf8,
		&c->starttls, &c->auth, &c->enhanced, &c->chunking, &c->size };

	for (size_t i = 0; i < sizeof(kws) / sizeof(*kws); i++) {
		if (!ref_kw(p, n, kws[i]))
			continue;
		*flags[i] = true;
		if (flags[i] != &c->size)
			return;
		c->size_max = 0;
		for (size_t j = 5; j < n && isdigit((unsigned char)p[j]); j++) {
			unsigned long d = (unsigned long)(p[j] - '0');

			c->size_max = c->size_max > (ULONG_MAX - d) / 10 ?
			    ULONG_MAX : c->size_max * 10 + d;
		}
		return;
	}
}

/* caps_equal - every field of a and b alike (no memcmp: padding) */
static bool caps_equal(const struct smtp_caps *a, const struct smtp_caps *b)
{
	return a->pipelining == b->pipelining && a->eightbit == b->eightbit &&
	    a->dsn == b->dsn && a->smtputf8 == b->smtputf8 &&
	    a->starttls == b->starttls && a->auth == b->auth &&
	    a->enhanced == b->enhanced && a->size == b->size &&
	    a->chunking == b->chunking && a->size_max == b->size_max;
}

/* check_text - a reply's text: one printable line starting with code */
static void check_text(const struct smtp_reply *r)
{
	const char *t = buf_str(&r->text);

	FUZZ_ASSERT(r->text.len >= 3 && r->text.len <= SMTP_TEXT_MAX);
	FUZZ_ASSERT(isdigit((unsigned char)t[0]) && isdigit((unsigned char)t[1])
		    && isdigit((unsigned char)t[2]) && digits3(t) == r->code);
	for (size_t i = 0; i < r->text.len; i++)
		FUZZ_ASSERT((unsigned char)t[i] >= 0x20 && t[i] != 0x7f);
}

/* replies - the input as reply lines */
static void replies(const char *data, size_t size)
{
	struct smtp_reply r = { 0 };
	struct smtp_caps caps = { 0 }, want = { 0 };
	size_t pos = 0;

	while (pos < size) {
		const char *l = data + pos, *nl = memchr(l, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - l) : size - pos, len = end;
		char *line;
		int code = -1, rcode = -1, before = r.code, rc;
		bool last = false, rlast = false;

		pos += end + (nl != NULL);
		/* cppcheck-suppress knownConditionTrueFalse ; 0 for "\n" */
		if (end > 0 && l[end - 1] == '\r')
			len = end - 1;
		line = exact_copy(l, len);
		rc = smtp_reply_line(line, len, &code, &last);
		FUZZ_ASSERT(rc == ref_reply_line(line, len, &rcode, &rlast));
		if (rc < 0) {
			FUZZ_ASSERT(smtp_reply_add(&r, line, len) == -1);
			smtp_reply_reset(&r);
			free(line);
			continue;
		}
		FUZZ_ASSERT(code == rcode && last == rlast);
		rc = smtp_reply_add(&r, line, len);
		FUZZ_ASSERT(rc == (before == 0 || before == code ? 0 : -1));
		if (rc == 0) {
			FUZZ_ASSERT(r.code == code && r.done == last);
			check_text(&r);
		}
		if (rc == 0 && code == 250 && before == 250 && len > 4) {
			/* digits after the keyword: a parser that reads past
			 * its length (uninstrumented libc does not tell
			 * ASan) gets a different SIZE */
			char *kw = malloc(len - 4 + 5);

			if (kw == NULL)
				abort();
			memcpy(kw, line + 4, len - 4);
			memcpy(kw + len - 4, "1234", 5);

			smtp_caps_line(&caps, kw, len - 4);
			ref_caps(&want, kw, len - 4);
			FUZZ_ASSERT(caps_equal(&caps, &want));
			free(kw);
		}
		if (rc < 0 || r.done)
			smtp_reply_reset(&r);
		free(line);
	}
	smtp_reply_free(&r);
}

/* stuffing - the input as message bytes, dot-stuffed and unstuffed */
static void stuffing(const char *data, size_t size)
{
	char *whole = malloc(2 * size + 1), *chunked = malloc(2 * size + 1);
	char *plain = malloc(size + 1);
	size_t nw, nc = 0, pos = 0, o = 0;
	bool bol = true;

	if (whole == NULL || chunked == NULL || plain == NULL)
		abort();
	nw = smtp_stuff(data, size, whole, &bol);
	bol = true;
	while (pos < size) {
		size_t k = 1 + (unsigned char)data[pos] % 67;

		if (k > size - pos)
			k = size - pos;
		nc += smtp_stuff(data + pos, k, chunked + nc, &bol);
		pos += k;
	}
	FUZZ_ASSERT(nw == nc && nw <= 2 * size);
	FUZZ_ASSERT(nw == 0 || memcmp(whole, chunked, nw) == 0);
	/* unstuff: a '.' at a line start must be doubled */
	for (size_t i = 0; i < nw; i++) {
		if (whole[i] == '.' && (i == 0 || whole[i - 1] == '\n')) {
			FUZZ_ASSERT(i + 1 < nw && whole[i + 1] == '.');
			i++;
		}
		FUZZ_ASSERT(o < size);
		plain[o++] = whole[i];
	}
	FUZZ_ASSERT(o == size);
	FUZZ_ASSERT(size == 0 || memcmp(plain, data, size) == 0);
	free(whole);
	free(chunked);
	free(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	replies((const char *)data, size);
	stuffing((const char *)data, size);
	return 0;
}
