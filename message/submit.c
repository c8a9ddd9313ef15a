/*
 * NAME
 *	submit - read a message from the caller into the spool
 * DESCRIPTION
 *	See submit.h. Input is read with read(2) through one buffer; the
 *	body goes through a small byte state machine (submit_body) that
 *	normalises line endings, spots the lone-dot terminator and refuses
 *	NUL bytes, writing CRLF text to the spool as it goes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "message/addr.h"
#include "message/header.h"
#include "message/submit.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"

struct input {
	int fd;
	size_t pos;
	size_t len;
	bool eof;
	unsigned long lineno;
	char buf[65536];
};

struct output {
	struct spool_writer *w;
	size_t used;
	char buf[65536];
};

/* input_fill - refill the buffer; false at end of input */
static bool input_fill(struct input *in)
{
	ssize_t n;

	if (in->eof)
		return false;
	do
		n = read(in->fd, in->buf, sizeof(in->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		log_die(EX_IOERR, "cannot read the message: %m; nothing was "
			"queued");
	in->pos = 0;
	in->len = (size_t)n;
	in->eof = n == 0;
	return n > 0;
}

/* input_getc - next byte, or -1 at end of input */
static inline int input_getc(struct input *in)
{
	if (in->pos == in->len && !input_fill(in))
		return -1;
	return (unsigned char)in->buf[in->pos++];
}

/* input_peek - next byte without taking it, or -1 */
static inline int input_peek(struct input *in)
{
	if (in->pos == in->len && !input_fill(in))
		return -1;
	return (unsigned char)in->buf[in->pos];
}

/* input_line - one line without its ending; false at end of input */
static bool input_line(struct input *in, struct buf *line)
{
	int c;

	buf_reset(line);
	if (input_peek(in) < 0)
		return false;
	in->lineno++;
	while ((c = input_getc(in)) >= 0) {
		if (c == '\n')
			break;
		if (c == '\r') {
			if (input_peek(in) == '\n')
				input_getc(in);
			break;
		}
		if (c == '\0')
			log_die(EX_DATAERR, "the message contains a NUL byte "
				"(line %lu); nothing was queued", in->lineno);
		if (buf_putc(line, (char)c) < 0)
			log_die(EX_DATAERR, "header line %lu is longer than %d"
				" bytes; nothing was queued", in->lineno,
				HEADER_BLOCK_MAX);
	}
	return true;
}

/* out_flush - hand the buffered CRLF text to the spool */
static void out_flush(struct output *o)
{
	spool_write(o->w, o->buf, o->used);
	o->used = 0;
}

/* out_put - buffered output */
static inline void out_putc(struct output *o, char c)
{
	if (o->used == sizeof(o->buf))
		out_flush(o);
	o->buf[o->used++] = c;
}

/* out_crlf - end a line */
static inline void out_crlf(struct output *o)
{
	out_putc(o, '\r');
	out_putc(o, '\n');
}

/* out_write - several bytes */
static void out_write(struct output *o, const char *p, size_t n)
{
	while (n--)
		out_putc(o, *p++);
}

/* submit_headers - read the header block; body_line gets a non-header
 * line that started the body early (no blank line before it) */
static bool submit_headers(struct input *in, const struct submit_opts *o,
			   struct headers *hs, struct buf *body_line)
{
	struct buf line = BUF_INIT(HEADER_BLOCK_MAX);
	bool more = true;

	while ((more = input_line(in, &line))) {
		if (o->dot_ends && strcmp(buf_str(&line), ".") == 0) {
			more = false;
			break;
		}
		if (in->lineno == 1 && strncmp(buf_str(&line), "From ", 5) == 0)
			continue;	/* mbox separator (git format-patch) */
		if (line.len == 0)
			break;
		if ((line.data[0] == ' ' || line.data[0] == '\t') && hs->n) {
			if (headers_fold(hs, line.data, line.len) < 0)
				goto too_big;
			continue;
		}
		if (header_name_len(line.data, line.len) == 0) {
			buf_append(body_line, line.data, line.len);
			break;
		}
		if (headers_add(hs, line.data, line.len) < 0)
			goto too_big;
	}
	buf_free(&line);
	return more;
too_big:
	log_die(EX_DATAERR, "the header block is larger than %d bytes; "
		"nothing was queued", HEADER_BLOCK_MAX);
}

/* submit_body - stream the body to the spool, normalising to CRLF */
static void submit_body(struct input *in, const struct submit_opts *o,
			struct output *out)
{
	bool bol = true, dot = false, cr = false;
	int c;

	while ((c = input_getc(in)) >= 0) {
		if (cr) {
			cr = false;
			out_crlf(out);
			bol = true;
			in->lineno++;
			if (c == '\n')
				continue;
		}
		if (dot) {
			if (c == '\n' || c == '\r')
				return;		/* the lone-dot terminator */
			out_putc(out, '.');
			dot = bol = false;
		}
		if (c == '\r') {
			cr = true;
		} else if (c == '\n') {
			out_crlf(out);
			bol = true;
			in->lineno++;
		} else if (c == '\0') {
			log_die(EX_DATAERR, "the message contains a NUL byte "
				"(line %lu); nothing was queued", in->lineno);
		} else if (c == '.' && bol && o->dot_ends) {
			dot = true;
		} else {
			out_putc(out, (char)c);
			bol = false;
		}
	}
	if (dot)
		return;		/* a last line of only "." ends the input too */
	if (cr || !bol)
		out_crlf(out);
}

/* submit_sender - the envelope sender, "" for the null sender */
const char *submit_sender(const struct conf *c, const struct submit_opts *o)
{
	static char *sender;
	const char *why;
	struct buf b = BUF_INIT(ADDR_MAX * 2);

	if (sender)
		return sender;
	if (o->sender && (strcmp(o->sender, "<>") == 0 || *o->sender == '\0'))
		return sender = xstrdup("");
	if (o->sender) {
		struct strlist l = STRLIST_INIT;

		addr_parse_list(o->sender, strlen(o->sender), &l);
		if (l.n != 1)
			log_die(EX_USAGE, "-f: not one address: %s", o->sender);
		sender = addr_qualify(l.v[0], conf_domain(c));
		strlist_free(&l);
	} else if (c->mail.from) {
		sender = xstrdup(c->mail.from);
	} else {
		buf_printf(&b, "%s@%s", sys_login(), conf_domain(c));
		sender = buf_steal(&b);
	}
	if ((why = addr_check_envelope(sender)) != NULL)
		log_die(EX_USAGE, "bad sender address: %s", why);
	buf_free(&b);
	return sender;
}

/* submit_add_rcpt - alias-expand, qualify, check and add one address */
static void submit_add_rcpt(const struct conf *c, const char *a,
			    struct strlist *out, int ex, int depth)
{
	const char *alias = strchr(a, '@') ? NULL : conf_alias(c, a);
	const char *why;
	char *q;

	if (alias && depth < 8) {
		struct strlist l = STRLIST_INIT;

		addr_parse_list(alias, strlen(alias), &l);
		for (size_t i = 0; i < l.n; i++)
			submit_add_rcpt(c, l.v[i], out, ex, depth + 1);
		strlist_free(&l);
		return;
	}
	q = addr_qualify(a, conf_domain(c));
	if ((why = addr_check_envelope(q)) != NULL)
		log_die(ex, "bad recipient address: %s", why);
	if (strlist_has_nocase(out, q))
		free(q);
	else
		strlist_take(out, q);
}

/* submit_recipients - expand address lists into out */
void submit_recipients(const struct conf *c, const struct strlist *lists,
		       struct strlist *out, int ex)
{
	for (size_t i = 0; i < lists->n; i++) {
		struct strlist l = STRLIST_INIT;

		addr_parse_list(lists->v[i], strlen(lists->v[i]), &l);
		for (size_t j = 0; j < l.n; j++)
			submit_add_rcpt(c, l.v[j], out, ex, 0);
		strlist_free(&l);
	}
}

/* submit_extract - -t: header recipients (Resent- block if present) */
static void submit_extract(const struct conf *c, struct headers *hs,
			   struct strlist *out)
{
	static const char *plain[] = { "To", "Cc", "Bcc", NULL };
	static const char *resent[] = { "Resent-To", "Resent-Cc",
					"Resent-Bcc", NULL };
	const char **names = headers_have_prefix(hs, "Resent-") ? resent :
	    plain;
	struct strlist lists = STRLIST_INIT;

	for (size_t i = 0; i < hs->n; i++)
		for (const char **n = names; *n; n++)
			if (header_is(&hs->v[i], *n)) {
				size_t len;
				const char *v = header_value(&hs->v[i], &len);

				strlist_take(&lists, xstrndup(v, len));
			}
	submit_recipients(c, &lists, out, EX_DATAERR);
	strlist_free(&lists);
}

/* submit_phrase - a display name, quoted when it needs to be */
static void submit_phrase(struct buf *b, const char *name)
{
	if (strpbrk(name, "()<>[]:;@\\,.\"") == NULL) {
		buf_puts(b, name);
		return;
	}
	buf_putc(b, '"');
	for (const char *p = name; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *p);
	}
	buf_putc(b, '"');
}

/* submit_add_from - From: [mail] from or login@domain, with a name */
static void submit_add_from(const struct conf *c, const struct submit_opts *o,
			    struct headers *hs)
{
	struct buf b = BUF_INIT(HEADER_BLOCK_MAX);
	const char *name = o->fullname ? o->fullname : sys_fullname();

	buf_puts(&b, "From: ");
	if (name && *name && !strpbrk(name, "\r\n")) {
		submit_phrase(&b, name);
		buf_puts(&b, " <");
	}
	if (c->mail.from)
		buf_puts(&b, c->mail.from);
	else
		buf_printf(&b, "%s@%s", sys_login(), conf_domain(c));
	if (name && *name && !strpbrk(name, "\r\n"))
		buf_putc(&b, '>');
	headers_add(hs, b.data, b.len);
	buf_free(&b);
}

/* submit_add_date - Date: now, RFC 5322 */
static void submit_add_date(struct headers *hs)
{
	char text[80];
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	localtime_r(&now, &tm);
	n = strftime(text, sizeof(text), "Date: %a, %d %b %Y %H:%M:%S %z",
		     &tm);
	headers_add(hs, text, n);
}

/* submit_add_msgid - Message-ID: <queue id.random@domain> */
static void submit_add_msgid(const struct conf *c, const char *id,
			     struct headers *hs)
{
	struct buf b = BUF_INIT(1024);
	unsigned int rnd = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (unsigned)time(NULL) ^ (unsigned)getpid();
	buf_printf(&b, "Message-ID: <%s.%08X@%s>", id, rnd, conf_domain(c));
	headers_add(hs, b.data, b.len);
	buf_free(&b);
}

/* submit_fix_headers - what every message gets, whatever the caller */
static void submit_fix_headers(const struct conf *c,
			       const struct submit_opts *o, const char *id,
			       struct headers *hs)
{
	headers_remove(hs, "Bcc");
	headers_remove(hs, "Resent-Bcc");
	if (!headers_find(hs, "From"))
		submit_add_from(c, o, hs);
	if (!headers_find(hs, "Date"))
		submit_add_date(hs);
	if (!headers_find(hs, "Message-ID"))
		submit_add_msgid(c, id, hs);
}

/* submit_write_headers - the header block and the blank line */
static void submit_write_headers(struct output *out, const struct headers *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		out_write(out, hs->v[i].text, hs->v[i].len);
		out_crlf(out);
	}
	out_crlf(out);
}

/* submit - read stdin, commit it to the spool, return it locked */
int submit(const struct conf *c, const struct submit_opts *o,
	    struct spool *s, struct spool_msg *m)
{
	static struct input in;
	static struct output out;
	static struct spool_writer w;
	struct headers hs = { 0 };
	struct buf body_line = BUF_INIT(HEADER_BLOCK_MAX);
	struct strlist rcpts = STRLIST_INIT;
	const char *sender = submit_sender(c, o);
	bool more;

	submit_recipients(c, &o->args, &rcpts, EX_USAGE);
	if (rcpts.n == 0 && !o->extract)
		log_die(EX_USAGE, "no recipients given (use -t to read them "
			"from the message)");
	in.fd = STDIN_FILENO;
	more = submit_headers(&in, o, &hs, &body_line);
	if (o->extract)
		submit_extract(c, &hs, &rcpts);
	if (rcpts.n == 0)
		log_die(EX_USAGE, "no recipients found; nothing was queued");
	spool_create(s, &w);
	out.w = &w;
	submit_fix_headers(c, o, w.id, &hs);
	spool_put_envelope(&w, sender, &rcpts);
	submit_write_headers(&out, &hs);
	if (body_line.len) {
		out_write(&out, body_line.data, body_line.len);
		out_crlf(&out);
	}
	if (more)
		submit_body(&in, o, &out);
	out_flush(&out);
	headers_free(&hs);
	buf_free(&body_line);
	strlist_free(&rcpts);
	return spool_commit(&w, m);
}
