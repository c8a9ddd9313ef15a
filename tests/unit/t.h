/*
 * NAME
 *	t - the unit test framework: checks, registration, helpers
 * SYNOPSIS
 *	#include "tests/unit/t.h"
 *
 *	static void addr_plain(void)
 *	{
 *		T_STREQ(got, "a@b");
 *	}
 *
 *	const struct t_test t_addr_tests[] = {
 *		T_ENTRY(addr_plain),
 *		T_END
 *	};
 * DESCRIPTION
 *	A test is a static void function; each tests/unit/test_X.c file
 *	ends with a table t_X_tests[] of its tests, and main.c lists the
 *	tables. The checks record a failure (file:line, the expression and
 *	the values) and return false, so a test can stop early:
 *	"if (!T_CHECK(fd >= 0)) return;".
 *
 *	main.c runs every test in a forked child (so a log_die() exit, a
 *	crash or a hang, caught by a 30 s alarm, fails that test only) with
 *	its own scratch directory, so tests may change the environment
 *	freely. OUTBOX_UNIT_NOFORK=1 runs them in one process instead (for a
 *	debugger; the environment is then shared).
 *	Usage: build/unit [--list] [SUBSTRING]
 *
 *	Note: the Makefile's header dependencies (a wildcard one directory
 *	deep) do not cover this file; after changing it, rm -r build/tests.
 *
 *	T_CTX() names the case a table-driven loop is checking; it is shown
 *	with every failure until the next T_CTX() or the end of the test.
 */
#ifndef OUTBOX_T_H
#define OUTBOX_T_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct t_test {
	const char *name;
	void (*fn)(void);
};

#define T_ENTRY(fn)	{ #fn, fn }
#define T_END		{ NULL, NULL }

extern const struct t_test t_addr_tests[];
extern const struct t_test t_header_tests[];
extern const struct t_test t_smtp_tests[];
extern const struct t_test t_conf_tests[];
extern const struct t_test t_spool_tests[];

#define T_CHECK(cond) \
	t_check(!!(cond), __FILE__, __LINE__, #cond)
#define T_STREQ(a, b) \
	t_streq((a), (b), __FILE__, __LINE__, #a, #b)
#define T_INTEQ(a, b) \
	t_inteq((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define T_MEMEQ(a, alen, b, blen) \
	t_memeq((a), (alen), (b), (blen), __FILE__, __LINE__, #a, #b)
#define T_CONTAINS(hay, needle) \
	t_contains((hay), (needle), __FILE__, __LINE__, #hay)
#define T_CTX(...)	t_ctx(__VA_ARGS__)

bool t_check(bool ok, const char *file, int line, const char *expr);
bool t_streq(const char *a, const char *b, const char *file, int line,
	     const char *ea, const char *eb);
bool t_inteq(long long a, long long b, const char *file, int line,
	     const char *ea, const char *eb);
bool t_memeq(const void *a, size_t alen, const void *b, size_t blen,
	     const char *file, int line, const char *ea, const char *eb);
bool t_contains(const char *hay, const char *needle, const char *file,
		int line, const char *ehay);
void t_ctx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* helpers (main.c) */

/* a new empty directory, mode 0700, removed after the test */
char *t_tmpdir(void);
/* dir "/" name, malloc'd */
char *t_path(const char *dir, const char *name);
/* create or replace path with text and exactly this mode; 0 or -1 */
int t_write_file(const char *path, const char *text, mode_t mode);
/* the whole file as a malloc'd string, NULL if it cannot be read */
char *t_read_file(const char *path);
/* does path exist (lstat) */
bool t_exists(const char *path);
/*
 * Run fn(arg) in a forked child whose stderr goes to err (NUL-terminated,
 * truncated to errlen). The child ends with _exit(0) if fn returns.
 * Returns the exit status, 128 + signal if it was killed, -1 if the fork
 * failed.
 */
int t_fork(void (*fn)(void *), void *arg, char *err, size_t errlen);

#endif
