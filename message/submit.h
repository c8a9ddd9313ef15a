/*
 * NAME
 *	submit - read a message from the caller into the spool
 * SYNOPSIS
 *	#include "message/submit.h"
 * DESCRIPTION
 *	The front ends (sendmail's command line, the -bs dialogue) fill in
 *	a struct submission: the envelope they were given and how to read
 *	the message. submit() then reads the message, fixes it up, and
 *	commits it to the spool. It returns only once the message and its
 *	envelope are on disk and fsync'd, with the message still locked, so
 *	the caller can try to deliver it at once.
 *
 *	What happens to a message: line endings become CRLF; without -i a
 *	line holding only "." ends the input (in -bs DATA the SMTP rules
 *	apply, with dot-unstuffing); a leading mbox "From " line is
 *	dropped; Bcc is removed; Date, Message-ID and From are added when
 *	missing; From and the envelope sender are rewritten to [mail] from
 *	as rewrite_from says; a body with lines longer than 998 octets is
 *	re-encoded quoted-printable when that is safe; NUL bytes are
 *	refused. With -t the To/Cc/Bcc headers (or the Resent- ones when
 *	present) add recipients. Recipients go through [aliases] and are
 *	qualified with the domain, then de-duplicated.
 * DIAGNOSTICS
 *	submit() returns 0 when the message is queued and m is filled in;
 *	1 when it is queued but could not be read back (m is unusable); -1
 *	with err filled in when the message was refused (nothing queued).
 *	Spool write failures end the program (log_die, EX_CANTCREAT or
 *	EX_IOERR) with nothing left behind.
 */
#ifndef OUTBOX_SUBMIT_H
#define OUTBOX_SUBMIT_H

#include <stdbool.h>

#include "conf/conf.h"
#include "message/input.h"
#include "queue/spool.h"
#include "util/strlist.h"

struct submission {
	/* the envelope; submit() adds -t recipients, may rewrite sender */
	char *sender;			/* "" is the null sender */
	bool sender_local;		/* given as a bare or local-host name */
	struct strlist rcpts;
	struct strlist rcpt_dsn;	/* parallel: RCPT DSN parameters */
	char *mail_dsn;			/* MAIL DSN parameters, or NULL */
	bool eightbit;			/* declared 8BITMIME (-B, BODY=) */
	const char *notify;		/* -N, for recipients added by -t */
	long max_size;			/* message bytes; 0: no limit */
	/* how to read the message */
	const char *fullname;		/* -F */
	bool extract;			/* -t */
	bool dot_ends;			/* no -i: a lone "." ends the input */
	bool smtp;			/* -bs DATA: SMTP dot rules */
};

struct submit_error {
	int ex;			/* sysexits code */
	int smtp;		/* SMTP reply code for -bs */
	char text[512];		/* "enhanced-code text" for -bs, also stderr */
};

void submission_init(struct submission *);
void submission_free(struct submission *);
int submit_sender(const struct conf *, struct submission *, const char *raw,
		  char *err, size_t errlen);
int submit_recipient(const struct conf *, struct submission *,
		     const char *addr, const char *dsn, char *err,
		     size_t errlen);
int submit_recipient_list(const struct conf *, struct submission *,
			  const char *list, const char *dsn, char *err,
			  size_t errlen);
int submit(const struct conf *, struct submission *, struct input *,
	   struct spool *, struct spool_msg *, struct submit_error *);

#endif
