/*
 * NAME
 *	runner - deliver queued messages through the relay
 * SYNOPSIS
 *	#include "queue/runner.h"
 * DESCRIPTION
 *	runner_deliver_new() makes the one immediate attempt that follows a
 *	submission and turns its outcome into the submission's exit status:
 *	0 when delivered or safely deferred, EX_UNAVAILABLE (69) when every
 *	recipient was permanently refused. When exit_tells (sendmail's own
 *	exit status reaches the caller) such a message is kept, failed, and
 *	not bounced; otherwise (-bs, where the client already heard 250) the
 *	refusal is bounced like any other.
 *
 *	runner_deliver_detached() is -odb: the same attempt in a detached
 *	process (its own session, no stdio), the caller returning 0 at once.
 *
 *	runner_flush() tries every queued message (or the one named) over
 *	one connection, reconnecting when the relay drops it; messages that
 *	another process holds are skipped, so concurrent flushes never send
 *	a message twice.
 *
 *	runner_loop() is sendmail -q<interval>: a foreground queue runner
 *	for containers. It flushes every interval and at once when a
 *	message is committed (inotify on q/). SIGTERM lets the current
 *	transaction finish and exits 0; SIGINT does the same.
 */
#ifndef OUTBOX_RUNNER_H
#define OUTBOX_RUNNER_H

#include "conf/conf.h"
#include "queue/spool.h"

int runner_deliver_new(const struct conf *, struct spool *,
		       struct spool_msg *, bool exit_tells);
int runner_deliver_detached(const struct conf *, struct spool *,
			    struct spool_msg *);
int runner_flush(const struct conf *, struct spool *, const char *only_id);
int runner_loop(const struct conf *, struct spool *, long interval);

#endif
