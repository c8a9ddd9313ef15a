/*
 * NAME
 *	crash - named kill points for the spool's crash tests
 * DESCRIPTION
 *	crash_point("name") kills the process with SIGKILL when the
 *	environment variable OUTBOX_CRASH_AT equals name. The tests use it
 *	to stop outbox in each state of the spool's state machine
 *	(docs/spool.md) and check recovery. It is a test hook: it only ever
 *	kills the caller's own process, which the caller could do anyway.
 */
#ifndef OUTBOX_CRASH_H
#define OUTBOX_CRASH_H

void crash_point(const char *name);

#endif
