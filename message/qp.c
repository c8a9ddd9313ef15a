/*
 * NAME
 *	qp - streaming quoted-printable encoder (RFC 2045 6.7)
 */
#include "message/qp.h"

#define QP_MAX 76

/* qp_put - emit text of width n, breaking softly first if it won't fit */
static void qp_put(struct qp *q, const char *s, int n, struct buf *out)
{
	if (q->col + n > QP_MAX - 1) {
		buf_append(out, "=\r\n", 3);
		q->col = 0;
	}
	buf_append(out, s, (size_t)n);
	q->col += n;
}

/* qp_byte - one data byte, literal or =XX */
static void qp_byte(struct qp *q, unsigned char c, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3] = { '=', hex[c >> 4], hex[c & 15] };
	char lit = (char)c;

	if ((c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t')
		qp_put(q, &lit, 1, out);
	else
		qp_put(q, enc, 3, out);
}

/* qp_flush_held - the held blank is not at a line end: literal */
static void qp_flush_held(struct qp *q, struct buf *out)
{
	if (q->held >= 0)
		qp_byte(q, (unsigned char)q->held, out);
	q->held = -1;
}

/* qp_newline - a hard line break; a held blank before it is encoded */
static void qp_newline(struct qp *q, struct buf *out)
{
	static const char *enc[2] = { "=20", "=09" };

	if (q->held >= 0)
		qp_put(q, enc[q->held == '\t'], 3, out);
	q->held = -1;
	buf_append(out, "\r\n", 2);
	q->col = 0;
}

/* qp_feed - encode n more bytes of CRLF text */
void qp_feed(struct qp *q, const char *in, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (q->cr) {
			q->cr = 0;
			if (c == '\n') {
				qp_newline(q, out);
				continue;
			}
			qp_flush_held(q, out);
			qp_byte(q, '\r', out);
		}
		if (c == '\r') {
			q->cr = 1;
		} else if (c == ' ' || c == '\t') {
			qp_flush_held(q, out);
			q->held = c;
		} else {
			qp_flush_held(q, out);
			qp_byte(q, c, out);
		}
	}
}

/* qp_end - finish: a dangling CR or blank is encoded */
void qp_end(struct qp *q, struct buf *out)
{
	if (q->cr) {
		q->cr = 0;
		qp_flush_held(q, out);
		qp_byte(q, '\r', out);
	}
	if (q->held >= 0) {
		static const char *enc[2] = { "=20", "=09" };

		qp_put(q, enc[q->held == '\t'], 3, out);
		q->held = -1;
	}
}
