/*
 * NAME
 *	bounce - delivery status notifications for failed recipients
 * DESCRIPTION
 *	bounce_queue() writes an RFC 3464 report (multipart/report with a
 *	human-readable part, message/delivery-status and the original
 *	headers as text/rfc822-headers) about m's failed recipients into
 *	the spool as a new message from the null sender to m's envelope
 *	sender, or to [mail] bounce_to when that sender is a bare local
 *	one. The report then travels through the relay like any message.
 *	A message from the null sender is never bounced.
 * DIAGNOSTICS
 *	Returns 0 and the new queue id in id (empty when there was nothing
 *	to report), or -1 when the report could not be queued (the failed
 *	recipients then stay failed and are reported again later).
 */
#ifndef OUTBOX_BOUNCE_H
#define OUTBOX_BOUNCE_H

#include <stddef.h>

#include "conf/conf.h"
#include "queue/spool.h"

int bounce_queue(const struct conf *, struct spool *, struct spool_msg *,
		 char *id, size_t idlen);

#endif
