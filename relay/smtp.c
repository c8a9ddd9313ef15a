/*
 * NAME
 *	smtp - the pure parts of the SMTP client
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "relay/smtp.h"

/* smtp_reply_line - parse "NNN-text" / "NNN text" / "NNN"; -1 if malformed */
int smtp_reply_line(const char *line, size_t len, int *code, bool *last)
{
	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || line[0] < '2' ||
	    line[0] > '5')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = len == 3 || line[3] == ' ';
	return 0;
}

/* smtp_text_append - add printable text, replacing controls */
static void smtp_text_append(struct buf *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n && b->len < SMTP_TEXT_MAX; i++) {
		unsigned char c = (unsigned char)p[i];

		buf_putc(b, (char)(c < 0x20 || c == 0x7f ? ' ' : c));
	}
}

/* smtp_reply_add - one more line of a reply; -1 if it does not belong */
int smtp_reply_add(struct smtp_reply *r, const char *line, size_t len)
{
	int code;
	bool last;

	if (r->text.max == 0)
		buf_init(&r->text, SMTP_TEXT_MAX);
	if (smtp_reply_line(line, len, &code, &last) < 0)
		return -1;
	if (r->code && code != r->code)
		return -1;
	if (r->code == 0) {
		r->code = code;
		smtp_text_append(&r->text, line, 3);
	}
	if (len > 4) {
		buf_putc(&r->text, ' ');
		smtp_text_append(&r->text, line + 4, len - 4);
	}
	r->done = last;
	return 0;
}

/* smtp_reply_reset - ready for the next reply */
void smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->done = false;
	buf_reset(&r->text);
}

/* smtp_reply_free - release the text */
void smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
	r->code = 0;
	r->done = false;
}

/* smtp_kw - does the keyword at p (length n) equal kw, any case */
static bool smtp_kw(const char *p, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	return n >= k && strncasecmp(p, kw, k) == 0 &&
	    (n == k || p[k] == ' ' || p[k] == '=');
}

/* smtp_number - the decimal number that starts p, reading no further
 * than n bytes; 0 if there is none, ULONG_MAX if it does not fit */
static unsigned long smtp_number(const char *p, size_t n)
{
	unsigned long v = 0;

	for (size_t i = 0; i < n && isdigit((unsigned char)p[i]); i++) {
		unsigned long d = (unsigned long)(p[i] - '0');

		if (v > (ULONG_MAX - d) / 10)
			return ULONG_MAX;
		v = v * 10 + d;
	}
	return v;
}

/* smtp_caps_line - record the EHLO keyword line "SIZE 1000" etc. */
void smtp_caps_line(struct smtp_caps *c, const char *keyword, size_t len)
{
	if (smtp_kw(keyword, len, "PIPELINING"))
		c->pipelining = true;
	else if (smtp_kw(keyword, len, "8BITMIME"))
		c->eightbit = true;
	else if (smtp_kw(keyword, len, "DSN"))
		c->dsn = true;
	else if (smtp_kw(keyword, len, "SMTPUTF8"))
		c->smtputf8 = true;
	else if (smtp_kw(keyword, len, "STARTTLS"))
		c->starttls = true;
	else if (smtp_kw(keyword, len, "AUTH"))
		c->auth = true;
	else if (smtp_kw(keyword, len, "ENHANCEDSTATUSCODES"))
		c->enhanced = true;
	else if (smtp_kw(keyword, len, "CHUNKING"))
		c->chunking = true;
	else if (smtp_kw(keyword, len, "SIZE")) {
		c->size = true;
		c->size_max = len > 5 ? smtp_number(keyword + 5, len - 5) : 0;
	}
}

/* smtp_stuff - copy n bytes to out (room for 2n), dot-stuffing lines */
size_t smtp_stuff(const char *in, size_t n, char *out, bool *bol)
{
	size_t o = 0;
	bool at = *bol;

	for (size_t i = 0; i < n; i++) {
		if (at && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		at = in[i] == '\n';
	}
	*bol = at;
	return o;
}
