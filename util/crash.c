/*
 * NAME
 *	crash - named kill points for the spool's crash tests, and
 *	allocation failure injection (see crash.h)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/crash.h"

static unsigned long crash_allocs;	/* allocations asked for so far */

/* crash_point - SIGKILL ourselves if OUTBOX_CRASH_AT names this point */
void crash_point(const char *name)
{
	static const char *want;
	static int looked;

	if (!looked) {
		want = getenv("OUTBOX_CRASH_AT");
		looked = 1;
	}
	if (want && strcmp(want, name) == 0)
		raise(SIGKILL);
}

/* crash_alloc_report - atexit: append the allocation count to the file
 * OUTBOX_ALLOC_COUNT names */
static void crash_alloc_report(void)
{
	const char *path = getenv("OUTBOX_ALLOC_COUNT");
	char line[32];
	int fd, n;

	if (path == NULL || *path == '\0')
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%lu\n", crash_allocs);
	if (write(fd, line, (size_t)n) != n) {
		/* a test hook: nothing more to do */
	}
	close(fd);
}

/* crash_alloc_fail - is this the allocation OUTBOX_FAIL_ALLOC names */
bool crash_alloc_fail(void)
{
	static unsigned long fail_at;
	static int looked, on;

	if (!looked) {
		const char *v = getenv("OUTBOX_FAIL_ALLOC");
		char *end;

		looked = 1;
		if (v && *v >= '0' && *v <= '9') {
			fail_at = strtoul(v, &end, 10);
			on = *end == '\0';
		}
		if (on)
			atexit(crash_alloc_report);
	}
	if (!on)
		return false;
	return ++crash_allocs == fail_at;
}
