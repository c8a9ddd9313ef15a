/*
 * NAME
 *	crash - named kill points for the spool's crash tests
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "util/crash.h"

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
