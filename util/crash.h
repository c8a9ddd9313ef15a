/*
 * NAME
 *	crash - named kill points for the spool's crash tests, and
 *	allocation failure injection
 * DESCRIPTION
 *	crash_point("name") kills the process with SIGKILL when the
 *	environment variable OUTBOX_CRASH_AT equals name. The tests use it
 *	to stop outbox in each state of the spool's state machine
 *	(docs/spool.md) and check recovery. It is a test hook: it only ever
 *	kills the caller's own process, which the caller could do anyway.
 *
 *	crash_alloc_fail() is asked by xmalloc() and its family (util/buf.c)
 *	before each allocation; it is true for the Nth allocation of the
 *	process when OUTBOX_FAIL_ALLOC=N (N >= 1), which then fails as if
 *	malloc() had returned NULL, so the real out-of-memory path runs.
 *	The count includes the allocations before a fork: a child goes on
 *	from its parent's count. OUTBOX_FAIL_ALLOC=0 only counts. With
 *	either, OUTBOX_ALLOC_COUNT=FILE makes each process that ends with
 *	exit() (not _exit()) append its count, one decimal line, to FILE;
 *	a run whose every count is below N never reached its failure.
 */
#ifndef OUTBOX_CRASH_H
#define OUTBOX_CRASH_H

#include <stdbool.h>

void crash_point(const char *name);
bool crash_alloc_fail(void);

#endif
