/*
 * NAME
 *	mailq - list the queue (sendmail -bp, mailq)
 * DESCRIPTION
 *	Postfix's familiar layout: one block per message with its id (a
 *	'!' after it when held), size, arrival time and sender, then each
 *	recipient not yet delivered, preceded by the last reply or error
 *	that concerns it. With --json, one JSON array for monitoring, every
 *	recipient included with its state. Reads the spool without locking
 *	and never starts TLS or touches the network.
 */
#ifndef OUTBOX_MAILQ_H
#define OUTBOX_MAILQ_H

#include <stdbool.h>

#include "conf/conf.h"

int mailq_list(const struct conf *, bool json);

#endif
