/*
 * NAME
 *	submit - read a message from the caller into the spool
 * DESCRIPTION
 *	See submit.h. The header block is read into memory (bounded); the
 *	body goes through a byte state machine (submit_body) that
 *	normalises line endings, applies the dot rules, notes 8-bit bytes
 *	and the longest line, and writes CRLF text to the spool as it goes.
 *	A body with a line over 998 octets is then copied once more,
 *	quoted-printable, into a second spool file (submit_reencode): the
 *	message is read once from the caller and memory stays flat.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "message/addr.h"
#include "message/dkim.h"
#include "message/header.h"
#include "message/qp.h"
#include "message/submit.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"

#define SMTP_LINE_LIMIT 998	/* octets per line, CRLF excluded */

struct output {
	struct spool_writer *w;
	bool discard;		/* after an error: read on, write nothing */
	bool hashing;		/* the body: feed it to the DKIM signers */
	struct dkim_signer **signers;
	size_t nsigners;
	size_t used;
	char buf[65536];
};

/* what one submission learns while reading */
struct reading {
	const struct conf *conf;
	struct submission *sub;
	struct input *in;
	struct headers hs;
	struct buf body_line;	/* a body line that came without blank line */
	bool more;		/* the body follows the headers */
	bool eightbit;		/* a byte >= 0x80 anywhere */
	bool header_8bit;	/* ... in the headers */
	unsigned long long_line;	/* first body line over the limit */
	long size;		/* body bytes, for max_size */
	bool dot_seen;		/* the input ended with a lone-dot line */
	struct submit_error *err;
};

/* submit_fail - remember the first reason the message is refused */
static void submit_fail(struct reading *r, int ex, int smtp,
			const char *fmt, ...) LOG_FMT(4, 5);

static void submit_fail(struct reading *r, int ex, int smtp,
			const char *fmt, ...)
{
	va_list ap;

	if (r->err->ex)
		return;
	r->err->ex = ex;
	r->err->smtp = smtp;
	va_start(ap, fmt);
	vsnprintf(r->err->text, sizeof(r->err->text), fmt, ap);
	va_end(ap);
}

/* out_flush - hand the buffered CRLF text to the spool (and, for the
 * body, to the DKIM signers) */
static void out_flush(struct output *o)
{
	if (!o->discard && o->used) {
		spool_write(o->w, o->buf, o->used);
		for (size_t i = 0; o->hashing && i < o->nsigners; i++)
			dkim_body(o->signers[i], o->buf, o->used);
	}
	o->used = 0;
}

/* out_putc - buffered output */
static inline void out_putc(struct output *o, char c)
{
	if (o->used == sizeof(o->buf))
		out_flush(o);
	o->buf[o->used++] = c;
}

/* out_write - several bytes */
static void out_write(struct output *o, const char *p, size_t n)
{
	while (n--)
		out_putc(o, *p++);
}

/* out_crlf - end a line */
static void out_crlf(struct output *o)
{
	out_putc(o, '\r');
	out_putc(o, '\n');
}

/* has_8bit - any byte >= 0x80 */
static bool has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/* submit_header_line - checks on one header line; false ends the headers */
static bool submit_header_line(struct reading *r, struct buf *line,
			       enum input_line rc)
{
	if (rc == LINE_NUL)
		submit_fail(r, EX_DATAERR, 554, "5.6.0 the message contains "
			    "a NUL byte (line %lu)", r->in->lineno);
	else if (rc == LINE_TOO_LONG || line->len > SMTP_LINE_LIMIT)
		submit_fail(r, EX_DATAERR, 554, "5.6.0 header line %lu is "
			    "longer than %d octets", r->in->lineno,
			    SMTP_LINE_LIMIT);
	if (has_8bit(buf_str(line), line->len))
		r->header_8bit = true;
	return r->err->ex == 0;
}

/* submit_dot_line - the dot rules for a header-phase line; true if the
 * line ends the input */
static bool submit_dot_line(struct reading *r, struct buf *line)
{
	if (line->len == 0 || line->data[0] != '.')
		return false;
	if (line->len == 1)
		return r->sub->smtp || r->sub->dot_ends;
	if (r->sub->smtp) {	/* unstuff */
		memmove(line->data, line->data + 1, line->len);
		line->len--;
	}
	return false;
}

/* submit_headers - read the header block; false if the input ended */
static bool submit_headers(struct reading *r)
{
	struct buf line = BUF_INIT(HEADER_BLOCK_MAX);
	enum input_line rc;
	bool more = false;

	while ((rc = input_line(r->in, &line)) != LINE_EOF) {
		if (submit_dot_line(r, &line)) {
			r->dot_seen = true;
			break;
		}
		if (!submit_header_line(r, &line, rc))
			continue;	/* refused: read on to the end */
		if (r->in->lineno == 1 && !r->sub->smtp &&
		    strncmp(buf_str(&line), "From ", 5) == 0)
			continue;	/* mbox separator (git format-patch) */
		if (line.len == 0) {
			more = true;
			break;
		}
		if ((line.data[0] == ' ' || line.data[0] == '\t') && r->hs.n) {
			if (headers_fold(&r->hs, line.data, line.len) < 0)
				goto too_big;
			continue;
		}
		if (header_name_len(line.data, line.len) == 0) {
			buf_append(&r->body_line, line.data, line.len);
			more = true;
			break;
		}
		if (headers_add(&r->hs, line.data, line.len) < 0)
			goto too_big;
	}
	buf_free(&line);
	return more;
too_big:
	buf_free(&line);
	submit_fail(r, EX_DATAERR, 552, "5.3.4 the header block is larger "
		    "than %d bytes", HEADER_BLOCK_MAX);
	return true;	/* read on */
}

/* body_state - where submit_body is within a line */
struct body_state {
	bool bol;		/* at the beginning of a line */
	bool dot;		/* a '.' at bol, waiting for the next byte */
	bool cr;		/* a CR, waiting to see if LF follows */
	size_t col;		/* bytes on this line so far */
};

/* body_eol - a line ended */
static void body_eol(struct reading *r, struct body_state *st,
		     struct output *out)
{
	out_crlf(out);
	r->size += 2;
	r->in->lineno++;	/* counts the lines read so far */
	if (st->col > SMTP_LINE_LIMIT && r->long_line == 0)
		r->long_line = r->in->lineno;
	st->bol = true;
	st->col = 0;
}

/* body_byte - an ordinary byte of a line */
static void body_byte(struct reading *r, struct body_state *st,
		      struct output *out, int c)
{
	if (c == '\0') {
		submit_fail(r, EX_DATAERR, 554, "5.6.0 the message contains a "
			    "NUL byte (line %lu)", r->in->lineno + 1);
		out->discard = true;
	}
	if (c >= 0x80)
		r->eightbit = true;
	out_putc(out, (char)c);
	st->bol = false;
	st->col++;
	if (r->sub->max_size && ++r->size > r->sub->max_size) {
		submit_fail(r, EX_DATAERR, 552, "5.3.4 the message is larger "
			    "than the limit of %ld bytes", r->sub->max_size);
		out->discard = true;
	}
}

/* submit_body - stream the body to the spool, normalising to CRLF */
static void submit_body(struct reading *r, struct output *out)
{
	struct body_state st = { .bol = true };
	bool dots = r->sub->smtp || r->sub->dot_ends;
	int c;

	while ((c = input_getc(r->in)) >= 0) {
		if (st.cr) {
			st.cr = false;
			body_eol(r, &st, out);
			if (c == '\n')
				continue;
		}
		if (st.dot) {
			st.dot = false;
			if (c == '\n' || c == '\r') {	/* the lone-dot line */
				if (c == '\r' && input_peek(r->in) == '\n')
					input_getc(r->in);
				r->dot_seen = true;
				return;
			}
			st.bol = false;
			if (!r->sub->smtp)	/* SMTP: unstuff the dot */
				body_byte(r, &st, out, '.');
		}
		if (c == '\r')
			st.cr = true;
		else if (c == '\n')
			body_eol(r, &st, out);
		else if (c == '.' && st.bol && dots)
			st.dot = true;
		else
			body_byte(r, &st, out, c);
		if (out->discard && !r->sub->smtp)
			return;		/* refused; nobody reads on */
	}
	if (st.dot) {
		r->dot_seen = true;	/* a last "." line ends it too */
		return;
	}
	if (st.cr || !st.bol)
		body_eol(r, &st, out);
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

/* submit_mailbox - "Name <addr>" or "addr" into b, which holds the
 * start of the line; without the name if the line would be too long */
static void submit_mailbox(struct buf *b, const char *name, const char *addr)
{
	size_t start = b->len;

	if (name && *name && !strpbrk(name, "\r\n")) {
		submit_phrase(b, name);
		buf_printf(b, " <%s>", addr);
		if (b->len <= SMTP_LINE_LIMIT)
			return;
		b->len = start;
		b->data[start] = '\0';
	}
	buf_puts(b, addr);
}

/* display_name - the phrase before <addr>, or the comment after addr */
static char *display_name(const char *v, size_t len)
{
	const char *lt = memchr(v, '<', len), *open, *close;
	const char *s = v, *e;

	if (lt) {
		e = lt;
	} else if ((open = memchr(v, '(', len)) != NULL &&
		   (close = memchr(open, ')',
				   len - (size_t)(open - v))) != NULL) {
		s = open + 1;
		e = close;
	} else {
		return NULL;
	}
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	/* cppcheck-suppress knownConditionTrueFalse ; true for "Al" <a@b> */
	if (e - s >= 2 && *s == '"' && e[-1] == '"') {
		s++;
		e--;
	}
	return e > s ? xstrndup(s, (size_t)(e - s)) : NULL;
}

/* submit_reply_to - "Reply-To:" and the From value v, folded after the
 * colon when that line would be too long (it is 4 longer than From's) */
static void submit_reply_to(struct buf *b, const char *v, size_t len)
{
	const char *cr = memchr(v, '\r', len);
	size_t first = cr ? (size_t)(cr - v) : len;

	if (sizeof("Reply-To:") - 1 + first <= SMTP_LINE_LIMIT)
		buf_printf(b, "Reply-To:%.*s", (int)len, v);
	else
		buf_printf(b, "Reply-To:\r\n%s%.*s", len && (*v == ' ' ||
			   *v == '\t') ? "" : " ", (int)len, v);
}

/* submit_rewrite_from - [mail] rewrite_from: From and envelope together */
static void submit_rewrite_from(struct reading *r)
{
	const struct conf *c = r->conf;
	const char *from = c->mail.from;
	enum conf_rewrite policy = c->mail.rewrite_from;
	struct header *h = headers_find(&r->hs, "From");
	struct strlist addrs = STRLIST_INIT;
	struct buf b = BUF_INIT(HEADER_BLOCK_MAX);
	const char *v;
	size_t len;
	char *name;

	if (from == NULL || policy == REWRITE_NEVER)
		return;
	if (*r->sub->sender && (policy == REWRITE_ALWAYS ||
				r->sub->sender_local)) {
		free(r->sub->sender);
		r->sub->sender = xstrdup(from);
	}
	if (h == NULL)
		return;
	v = header_value(h, &len);
	addr_parse_list(v, len, &addrs);
	if (addrs.n == 1 && (policy == REWRITE_ALWAYS ||
			     addr_local(addrs.v[0]))) {
		if (!addr_local(addrs.v[0]) &&
		    strcasecmp(addrs.v[0], from) != 0 &&
		    !headers_find(&r->hs, "Reply-To")) {
			submit_reply_to(&b, v, len);
			headers_add(&r->hs, b.data, b.len);
			buf_reset(&b);
		}
		name = display_name(v, len);
		buf_puts(&b, "From: ");
		submit_mailbox(&b, name, from);
		headers_remove(&r->hs, "From");
		headers_add(&r->hs, b.data, b.len);
		free(name);
	}
	strlist_free(&addrs);
	buf_free(&b);
}

/* submit_add_from - From: [mail] from or login@domain, with a name */
static void submit_add_from(struct reading *r)
{
	const struct conf *c = r->conf;
	struct buf b = BUF_INIT(HEADER_BLOCK_MAX);
	struct buf addr = BUF_INIT(ADDR_MAX * 2);
	const char *name = r->sub->fullname ? r->sub->fullname :
	    sys_fullname();

	if (c->mail.from)
		buf_puts(&addr, c->mail.from);
	else
		buf_printf(&addr, "%s@%s", sys_login(), conf_domain(c));
	buf_puts(&b, "From: ");
	submit_mailbox(&b, name, buf_str(&addr));
	headers_add(&r->hs, b.data, b.len);
	buf_free(&b);
	buf_free(&addr);
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

/* submit_fix_headers - what every message gets, whatever the caller
 * (the Message-ID comes with the queue id, submit_add_msgid_if_missing) */
static void submit_fix_headers(struct reading *r)
{
	headers_remove(&r->hs, "Bcc");
	headers_remove(&r->hs, "Resent-Bcc");
	submit_rewrite_from(r);
	if (!headers_find(&r->hs, "From"))
		submit_add_from(r);
	if (!headers_find(&r->hs, "Date"))
		submit_add_date(&r->hs);
}

/* submit_add_msgid_if_missing - Message-ID from the queue id */
static void submit_add_msgid_if_missing(struct reading *r, const char *id)
{
	if (!headers_find(&r->hs, "Message-ID"))
		submit_add_msgid(r->conf, id, &r->hs);
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

/* header_starts - does header name's value start with one of words */
static bool header_starts(struct headers *hs, const char *name,
			  const char *const *words)
{
	struct header *h = headers_find(hs, name);
	size_t len;
	const char *v;

	if (h == NULL)
		return false;
	v = header_value(h, &len);
	while (len && isspace((unsigned char)*v)) {
		v++;
		len--;
	}
	for (; *words; words++)
		if (len >= strlen(*words) &&
		    strncasecmp(v, *words, strlen(*words)) == 0)
			return true;
	return false;
}

/* submit_can_reencode - is quoted-printable safe for this message */
static bool submit_can_reencode(struct reading *r)
{
	static const char *const identity[] = { "7bit", "8bit", "binary",
						NULL };
	static const char *const composite[] = { "multipart/", "message/",
						 NULL };

	if (headers_find(&r->hs, "Content-Transfer-Encoding") &&
	    !header_starts(&r->hs, "Content-Transfer-Encoding", identity))
		return false;
	return !header_starts(&r->hs, "Content-Type", composite);
}

/* submit_qp_headers - declare the new encoding */
static void submit_qp_headers(struct reading *r)
{
	static const char cte[] = "Content-Transfer-Encoding: "
	    "quoted-printable";
	static const char ctype[] = "Content-Type: text/plain; charset=utf-8";

	headers_remove(&r->hs, "Content-Transfer-Encoding");
	if (!headers_find(&r->hs, "MIME-Version"))
		headers_add(&r->hs, "MIME-Version: 1.0", 17);
	if (!headers_find(&r->hs, "Content-Type") && r->eightbit)
		headers_add(&r->hs, ctype, sizeof(ctype) - 1);
	headers_add(&r->hs, cte, sizeof(cte) - 1);
}

/* submit_copy_qp - the body from fd at off, quoted-printable, into out */
static void submit_copy_qp(int fd, off_t off, struct output *out)
{
	static char in[65536];
	struct qp q = QP_INIT;
	struct buf enc = BUF_INIT(4 * sizeof(in));
	ssize_t n;

	while ((n = pread(fd, in, sizeof(in), off)) > 0) {
		qp_feed(&q, in, (size_t)n, &enc);
		out_write(out, enc.data, enc.len);
		buf_reset(&enc);
		off += n;
	}
	if (n < 0)
		log_die(EX_IOERR, "cannot re-read the spool file: %m");
	qp_end(&q, &enc);
	out_write(out, enc.data, enc.len);
	buf_free(&enc);
}

/* submit_envelope - the envelope header of the queue file */
static void submit_envelope(struct reading *r, struct spool_writer *w,
			    size_t dkim_slots)
{
	struct spool_env env = {
		.sender = r->sub->sender,
		.mail_dsn = r->sub->mail_dsn,
		.rcpts = &r->sub->rcpts,
		.rcpt_dsn = &r->sub->rcpt_dsn,
		.dkim_slots = dkim_slots,
	};

	spool_put_envelope(w, &env);
}

/* submit_reencode - second pass: the same message, body quoted-printable;
 * returns the writer to commit */
static struct spool_writer *submit_reencode(struct reading *r,
					    struct spool_writer *w,
					    off_t body_off, struct output *out)
{
	static struct spool_writer w2;
	int fd = spool_detach(w);

	spool_create(w->spool, &w2);
	out->w = &w2;
	out->hashing = false;
	submit_qp_headers(r);
	submit_envelope(r, &w2, out->nsigners);
	submit_write_headers(out, &r->hs);
	out_flush(out);
	for (size_t i = 0; i < out->nsigners; i++)
		dkim_body_reset(out->signers[i]);
	out->hashing = true;
	submit_copy_qp(fd, body_off, out);
	out_flush(out);
	close(fd);
	w2.eightbit = r->header_8bit;
	w2.utf8 = w->utf8;
	return &w2;
}

/* submit_utf8 - does the message need SMTPUTF8 */
static enum spool_utf8 submit_utf8(struct reading *r)
{
	if (has_8bit(r->sub->sender, strlen(r->sub->sender)))
		return UTF8_NEED;
	for (size_t i = 0; i < r->sub->rcpts.n; i++)
		if (has_8bit(r->sub->rcpts.v[i], strlen(r->sub->rcpts.v[i])))
			return UTF8_NEED;
	return r->header_8bit ? UTF8_WANT : UTF8_NO;
}

/* submit_extract - -t: header recipients (Resent- block if present) */
static void submit_extract(struct reading *r)
{
	static const char *plain[] = { "To", "Cc", "Bcc", NULL };
	static const char *resent[] = { "Resent-To", "Resent-Cc",
					"Resent-Bcc", NULL };
	const char **names = headers_have_prefix(&r->hs, "Resent-") ? resent :
	    plain;
	char why[256];

	for (size_t i = 0; i < r->hs.n; i++)
		for (const char **n = names; *n; n++) {
			size_t len;
			const char *v;
			char *list;

			if (!header_is(&r->hs.v[i], *n))
				continue;
			v = header_value(&r->hs.v[i], &len);
			list = xstrndup(v, len);
			if (submit_recipient_list(r->conf, r->sub, list,
						  r->sub->notify, why,
						  sizeof(why)) < 0)
				submit_fail(r, EX_DATAERR, 553, "5.1.3 %s: %s",
					    *n, why);
			free(list);
		}
}

/* submit_from_domain - the domain of the From address, or NULL */
static char *submit_from_domain(struct reading *r)
{
	struct header *h = headers_find(&r->hs, "From");
	struct strlist l = STRLIST_INIT;
	char *d = NULL, *at;
	size_t len;
	const char *v;

	if (h == NULL)
		return NULL;
	v = header_value(h, &len);
	addr_parse_list(v, len, &l);
	if (l.n && (at = strrchr(l.v[0], '@')) != NULL)
		d = xstrdup(at + 1);
	strlist_free(&l);
	return d;
}

/* submit_signers - the DKIM keys for this message; -1 if one is bad */
static int submit_signers(struct reading *r, struct output *out)
{
	static struct dkim_signer *signers[DKIM_MAX_SIGS];
	char *domain = submit_from_domain(r), err[512];
	int rc;

	out->signers = signers;
	out->nsigners = 0;
	rc = dkim_select(r->conf, domain, signers, &out->nsigners, err,
			 sizeof(err));
	free(domain);
	if (rc < 0)
		submit_fail(r, EX_CONFIG, 451, "4.3.5 %s", err);
	return rc;
}

/* submit_sign - one DKIM-Signature per signer, for the spool's slots */
static void submit_sign(struct reading *r, struct output *out,
			struct spool_writer *w)
{
	for (size_t i = 0; i < out->nsigners; i++) {
		struct buf sig = BUF_INIT(SPOOL_DKIM_SLOT);

		if (dkim_sign(out->signers[i], &r->hs, &sig) < 0)
			log_die(EX_SOFTWARE, "DKIM signing failed");
		strlist_take(&w->dkim, buf_steal(&sig));
	}
}

/* submit_unsign - release the signers */
static void submit_unsign(struct output *out)
{
	for (size_t i = 0; i < out->nsigners; i++)
		dkim_free(out->signers[i]);
	out->nsigners = 0;
}

/* submit_write - spool the message read so far and the rest of the body */
static int submit_write(struct reading *r, struct spool *s,
			struct spool_msg *m)
{
	static struct spool_writer w;
	static struct output out;
	struct spool_writer *final;
	off_t body_off;

	out.discard = out.hashing = false;
	out.used = 0;
	submit_fix_headers(r);
	if (submit_signers(r, &out) < 0)
		return -1;
	spool_create(s, &w);
	out.w = &w;
	submit_add_msgid_if_missing(r, w.id);
	submit_envelope(r, &w, out.nsigners);
	submit_write_headers(&out, &r->hs);
	out_flush(&out);
	out.hashing = true;
	body_off = w.data_off + w.data_len;
	r->size = (long)w.data_len;	/* max_size counts the headers too */
	if (r->body_line.len) {
		out_write(&out, r->body_line.data, r->body_line.len);
		out_crlf(&out);
	}
	if (r->more)
		submit_body(r, &out);
	out_flush(&out);
	if (r->sub->smtp && !r->dot_seen)
		submit_fail(r, EX_DATAERR, 451, "4.3.0 the input ended before "
			    "the final dot: message not accepted");
	if (r->err->ex == 0 && r->long_line && !submit_can_reencode(r))
		submit_fail(r, EX_DATAERR, 554, "5.6.0 line %lu is longer than"
			    " %d octets and the message is already MIME-encoded"
			    " or multipart, so it cannot be re-encoded safely",
			    r->long_line, SMTP_LINE_LIMIT);
	if (r->err->ex) {
		spool_abort(&w);
		submit_unsign(&out);
		return -1;
	}
	w.eightbit = r->eightbit || r->header_8bit || r->sub->eightbit;
	w.utf8 = submit_utf8(r);
	final = r->long_line ? submit_reencode(r, &w, body_off, &out) : &w;
	submit_sign(r, &out, final);
	submit_unsign(&out);
	return spool_commit(final, m) < 0 ? 1 : 0;
}

/* submit_drain - after a refusal in -bs DATA, read to the final dot */
static void submit_drain(struct reading *r)
{
	struct output sink = { .discard = true };

	if (r->sub->smtp && r->more)
		submit_body(r, &sink);
}

/* submit - read the message, commit it to the spool, return it locked */
int submit(const struct conf *c, struct submission *sub, struct input *in,
	   struct spool *s, struct spool_msg *m, struct submit_error *err)
{
	struct reading r = { .conf = c, .sub = sub, .in = in, .err = err };
	int rc = -1;

	memset(err, 0, sizeof(*err));
	buf_init(&r.body_line, HEADER_BLOCK_MAX);
	r.more = submit_headers(&r);
	if (sub->extract && err->ex == 0)
		submit_extract(&r);
	if (sub->rcpts.n == 0 && err->ex == 0)
		submit_fail(&r, EX_USAGE, 554, "5.5.1 no recipients found");
	if (err->ex == 0)
		rc = submit_write(&r, s, m);
	else
		submit_drain(&r);
	headers_free(&r.hs);
	buf_free(&r.body_line);
	return rc;
}

/* submission_init - an empty submission with sendmail's defaults */
void submission_init(struct submission *sub)
{
	memset(sub, 0, sizeof(*sub));
	sub->dot_ends = true;
}

/* submission_free - release what the submission owns */
void submission_free(struct submission *sub)
{
	free(sub->sender);
	free(sub->mail_dsn);
	strlist_free(&sub->rcpts);
	strlist_free(&sub->rcpt_dsn);
	sub->sender = sub->mail_dsn = NULL;
}

/* submit_sender - set the envelope sender from raw (-f, MAIL FROM), or
 * the default when raw is NULL; -1 with err if it is not an address */
int submit_sender(const struct conf *c, struct submission *sub,
		  const char *raw, char *err, size_t errlen)
{
	struct strlist l = STRLIST_INIT;
	struct buf b = BUF_INIT(ADDR_MAX * 2);
	const char *why;

	free(sub->sender);
	sub->sender = NULL;
	sub->sender_local = false;
	if (raw && (strcmp(raw, "<>") == 0 || *raw == '\0')) {
		sub->sender = xstrdup("");
		return 0;
	}
	if (raw) {
		addr_parse_list(raw, strlen(raw), &l);
		if (l.n == 1) {
			sub->sender = addr_qualify(l.v[0], conf_domain(c));
			sub->sender_local = addr_local(l.v[0]);
		}
		strlist_free(&l);
	} else if (c->mail.from) {
		sub->sender = xstrdup(c->mail.from);
	} else {
		buf_printf(&b, "%s@%s", sys_login(), conf_domain(c));
		sub->sender = buf_steal(&b);
	}
	why = sub->sender ? addr_check_envelope(sub->sender) :
	    "not exactly one address";
	if (why == NULL)
		return 0;
	snprintf(err, errlen, "bad sender address: %s", why);
	free(sub->sender);
	sub->sender = NULL;
	return -1;
}

#define ALIAS_FINAL 100	/* depth for a name not to be looked up again */

/* NOLINTBEGIN(misc-no-recursion): an alias nests 8 deep at most */
/* submit_expand - alias-expand, qualify, check and add one address */
static int submit_expand(const struct conf *c, struct submission *sub,
			 const char *a, const char *dsn, int depth, char *err,
			 size_t errlen)
{
	const char *alias = strchr(a, '@') || depth == ALIAS_FINAL ? NULL :
	    conf_alias(c, a);
	const char *why;
	char *q;
	int rc = 0;

	if (alias == NULL && depth == 0 && strchr(a, '@') == NULL)
		alias = conf_alias(c, "*");	/* the catch-all */
	if (alias && depth >= 8) {
		snprintf(err, errlen, "alias loop at %s", a);
		return -1;
	}
	if (alias) {
		struct strlist l = STRLIST_INIT;

		addr_parse_list(alias, strlen(alias), &l);
		for (size_t i = 0; i < l.n && rc == 0; i++)
			/* "root = root, ops@x": the name itself is final */
			rc = submit_expand(c, sub, l.v[i], dsn,
					   strcasecmp(l.v[i], a) ? depth + 1 :
					   ALIAS_FINAL, err, errlen);
		strlist_free(&l);
		return rc;
	}
	q = addr_qualify(a, conf_domain(c));
	if ((why = addr_check_envelope(q)) != NULL) {
		snprintf(err, errlen, "bad recipient address: %s", why);
		free(q);
		return -1;
	}
	if (strlist_has_nocase(&sub->rcpts, q)) {
		free(q);
		return 0;
	}
	strlist_take(&sub->rcpts, q);
	strlist_add(&sub->rcpt_dsn, dsn ? dsn : "");
	return 0;
}
/* NOLINTEND(misc-no-recursion) */

/* submit_recipient - add one address (through aliases) */
int submit_recipient(const struct conf *c, struct submission *sub,
		     const char *addr, const char *dsn, char *err,
		     size_t errlen)
{
	return submit_expand(c, sub, addr, dsn, 0, err, errlen);
}

/* submit_recipient_list - add every address of an address list */
int submit_recipient_list(const struct conf *c, struct submission *sub,
			  const char *list, const char *dsn, char *err,
			  size_t errlen)
{
	struct strlist l = STRLIST_INIT;
	int rc = 0;

	addr_parse_list(list, strlen(list), &l);
	for (size_t i = 0; i < l.n && rc == 0; i++)
		rc = submit_expand(c, sub, l.v[i], dsn, 0, err, errlen);
	strlist_free(&l);
	return rc;
}
