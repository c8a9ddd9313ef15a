/*
 * NAME
 *	smtpd - sendmail -bs: an SMTP server dialogue on stdin/stdout
 * DESCRIPTION
 *	What Symfony Mailer and Laravel speak to /usr/sbin/sendmail -bs: a
 *	complete RFC 5321 session for one local client, several messages
 *	per session, pipelined input (replies are flushed only when no
 *	input is waiting). The 250 after the final dot is sent only once
 *	the message is durable in the spool; delivery then proceeds as in
 *	the default mode, and its outcome shows in mailq and the log, not
 *	in the dialogue. stderr stays silent for the whole session.
 */
#ifndef OUTBOX_SMTPD_H
#define OUTBOX_SMTPD_H

#include "conf/conf.h"

int smtpd_run(const struct conf *);

#endif
