/*
 * NAME
 *	smtp - the pure parts of the SMTP client: replies, EHLO keywords,
 *	dot-stuffing
 * DESCRIPTION
 *	No I/O here, so every function is unit-tested on its own.
 *
 *	smtp_reply_line() classifies one reply line ("250-PIPELINING",
 *	"550 5.1.1 No such user"). smtp_reply_add() accumulates the lines
 *	of one reply into a struct smtp_reply whose text is a single
 *	printable line ("550 5.1.1 No such user"), safe for logs and the
 *	spool's state file.
 *
 *	smtp_caps_line() records one EHLO keyword.
 *
 *	smtp_stuff() copies message bytes (already CRLF) for the wire,
 *	doubling a '.' at the start of every line (RFC 5321 4.5.2); the
 *	line-start state carries across calls.
 */
#ifndef OUTBOX_SMTP_H
#define OUTBOX_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define SMTP_LINE_MAX	4096	/* longest reply line we accept */
#define SMTP_TEXT_MAX	1024	/* longest reply text we keep */

struct smtp_reply {
	int code;		/* 0 until the first line */
	bool done;		/* the last line has been seen */
	struct buf text;	/* "550 5.1.1 text text" */
};

struct smtp_caps {
	bool pipelining;
	bool eightbit;
	bool dsn;
	bool smtputf8;
	bool starttls;
	bool auth;
	bool enhanced;
	bool size;
	bool chunking;		/* BDAT (RFC 3030) */
	unsigned long size_max;	/* 0: no limit announced */
};

int smtp_reply_line(const char *line, size_t len, int *code, bool *last);
int smtp_reply_add(struct smtp_reply *, const char *line, size_t len);
void smtp_reply_reset(struct smtp_reply *);
void smtp_reply_free(struct smtp_reply *);
void smtp_caps_line(struct smtp_caps *, const char *keyword, size_t len);
size_t smtp_stuff(const char *in, size_t n, char *out, bool *bol);

#endif
