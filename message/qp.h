/*
 * NAME
 *	qp - streaming quoted-printable encoder (RFC 2045 6.7)
 * DESCRIPTION
 *	Used to re-encode a body whose lines are too long for SMTP (more
 *	than 998 octets). Input is CRLF text fed a chunk at a time; output
 *	lines are at most 76 characters, with soft breaks ("=" CRLF), '='
 *	and 8-bit bytes as =XX, and white space at the end of a line
 *	encoded so that transports cannot strip it.
 */
#ifndef OUTBOX_QP_H
#define OUTBOX_QP_H

#include <stddef.h>

#include "util/buf.h"

struct qp {
	int col;	/* characters on the current output line */
	int held;	/* a blank waiting to see whether a line end follows */
	int cr;		/* a CR waiting for its LF */
};

#define QP_INIT { 0, -1, 0 }

void qp_feed(struct qp *, const char *in, size_t n, struct buf *out);
void qp_end(struct qp *, struct buf *out);

#endif
