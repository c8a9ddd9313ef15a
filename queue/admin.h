/*
 * NAME
 *	admin - hold, release and delete one queued message
 * DESCRIPTION
 *	sendmail --hold ID keeps a message in the queue without trying it;
 *	--release ID makes it due again at once; --delete ID removes it
 *	(a corrupt queue file too). Retrying one message now is -qI<ID>.
 *	Each takes the message lock, waiting up to ADMIN_WAIT seconds for a
 *	delivery in progress to finish.
 * DIAGNOSTICS
 *	EX_NOINPUT (66) no such message; EX_TEMPFAIL (75) still being
 *	delivered; EX_IOERR (74) the spool could not be changed.
 */
#ifndef OUTBOX_ADMIN_H
#define OUTBOX_ADMIN_H

#include "conf/conf.h"

enum admin_op { ADMIN_HOLD, ADMIN_RELEASE, ADMIN_DELETE };

int admin_apply(const struct conf *, enum admin_op, const char *id);

#endif
