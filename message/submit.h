/*
 * NAME
 *	submit - read a message from the caller into the spool
 * SYNOPSIS
 *	#include "message/submit.h"
 * DESCRIPTION
 *	submit() reads the message on standard input the way sendmail
 *	does, fixes it up (see below), works out the envelope and commits
 *	the message to the spool. It returns only once the message and its
 *	envelope are on disk and fsync'd, with the message still locked, so
 *	the caller can try to deliver it at once. It returns -1 in the rare
 *	case that the committed message cannot be read back: it is queued
 *	all the same, and the caller must not touch m.
 *
 *	The header block is read into memory (bounded), the body is
 *	streamed. Line endings become CRLF; without -i a line holding only
 *	"." ends the input. A leading mbox "From " line is dropped. Bcc is
 *	always removed; Date, Message-ID and From are added when missing.
 *	Recipients: the arguments, plus with -t the To/Cc/Bcc headers (or
 *	the Resent- ones when present), expanded through [aliases],
 *	qualified with the domain, de-duplicated.
 * DIAGNOSTICS
 *	Dies with EX_USAGE (64) for bad arguments or no recipients,
 *	EX_DATAERR (65) for bad input, EX_IOERR (74) for a read error, and
 *	the spool's codes for write errors. Nothing is left in the spool on
 *	any of these paths.
 */
#ifndef OUTBOX_SUBMIT_H
#define OUTBOX_SUBMIT_H

#include <stdbool.h>

#include "conf/conf.h"
#include "queue/spool.h"
#include "util/strlist.h"

struct submit_opts {
	const char *sender;	/* -f/-r, NULL if not given; "<>" or "" null */
	const char *fullname;	/* -F, NULL if not given */
	bool extract;		/* -t */
	bool dot_ends;		/* no -i: a lone "." line ends the input */
	struct strlist args;	/* recipient arguments, each a list */
};

const char *submit_sender(const struct conf *, const struct submit_opts *);
void submit_recipients(const struct conf *, const struct strlist *lists,
		       struct strlist *out, int ex);
int submit(const struct conf *, const struct submit_opts *,
	   struct spool *, struct spool_msg *);

#endif
