/*
 * NAME
 *	main - run the unit tests
 * SYNOPSIS
 *	build/unit [--list] [SUBSTRING]
 * DESCRIPTION
 *	Runs every registered test (or those whose name contains
 *	SUBSTRING), each in its own forked child with a 30 second alarm,
 *	prints every failing check, and ends with the single line
 *	"N passed, M failed" (counting tests). Exits 1 if a test failed,
 *	2 on a usage error or when no test matches.
 *
 *	Every test gets a scratch directory (removed afterwards) under
 *	which t_tmpdir() creates its directories. OUTBOX_UNIT_NOFORK=1 runs
 *	the tests in this process instead, for a debugger.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/t.h"

#define T_TIMEOUT	30	/* seconds per test */
#define T_SHOW_MAX	240	/* longest value shown in a failure */

extern const struct t_test t_oauth2_tests[];	/* relay/oauth2.c */
extern const struct t_test t_strlist_tests[];	/* util/strlist.c */
extern const struct t_test t_sasl_tests[];	/* relay/sasl.c */
static const struct t_test *const t_suites[] = {
	t_addr_tests,
	t_header_tests,
	t_smtp_tests,
	t_conf_tests,
	t_spool_tests,
	t_oauth2_tests,
	t_strlist_tests,
	t_sasl_tests,
};

static const char *t_current;	/* name of the running test */
static unsigned t_nfail;	/* failed checks in the running test */
static char t_ctx_text[512];	/* T_CTX() */
static char t_scratch[4096];	/* the running test's scratch directory */
static unsigned t_ndirs;	/* directories made by t_tmpdir() */

/* t_show - print s as a quoted C string with escapes, shortened */
static void t_show(const char *s, size_t n)
{
	if (s == NULL) {
		fputs("(null)", stdout);
		return;
	}
	putchar('"');
	for (size_t i = 0; i < n && i < T_SHOW_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
	if (n > T_SHOW_MAX)
		printf("...(%zu bytes)", n);
}

/* t_fail_head - first line of a failure report */
static void t_fail_head(const char *file, int line, const char *what)
{
	t_nfail++;
	printf("FAIL %s: %s:%d: %s", t_current, file, line, what);
	if (t_ctx_text[0])
		printf("  [%s]", t_ctx_text);
	putchar('\n');
}

bool t_check(bool ok, const char *file, int line, const char *expr)
{
	if (!ok)
		t_fail_head(file, line, expr);
	return ok;
}

bool t_streq(const char *a, const char *b, const char *file, int line,
	     const char *ea, const char *eb)
{
	char what[512];

	if (a && b && strcmp(a, b) == 0)
		return true;
	if (a == NULL && b == NULL)
		return true;
	snprintf(what, sizeof(what), "%s == %s", ea, eb);
	t_fail_head(file, line, what);
	fputs("    got:  ", stdout);
	t_show(a, a ? strlen(a) : 0);
	fputs("\n    want: ", stdout);
	t_show(b, b ? strlen(b) : 0);
	putchar('\n');
	return false;
}

bool t_inteq(long long a, long long b, const char *file, int line,
	     const char *ea, const char *eb)
{
	char what[512];

	if (a == b)
		return true;
	snprintf(what, sizeof(what), "%s == %s", ea, eb);
	t_fail_head(file, line, what);
	printf("    got:  %lld\n    want: %lld\n", a, b);
	return false;
}

bool t_memeq(const void *a, size_t alen, const void *b, size_t blen,
	     const char *file, int line, const char *ea, const char *eb)
{
	char what[512];

	if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
		return true;
	snprintf(what, sizeof(what), "%s == %s", ea, eb);
	t_fail_head(file, line, what);
	printf("    got:  (%zu) ", alen);
	t_show(a, alen);
	printf("\n    want: (%zu) ", blen);
	t_show(b, blen);
	putchar('\n');
	return false;
}

bool t_contains(const char *hay, const char *needle, const char *file,
		int line, const char *ehay)
{
	char what[512];

	if (hay && strstr(hay, needle))
		return true;
	snprintf(what, sizeof(what), "%s contains \"%s\"", ehay, needle);
	t_fail_head(file, line, what);
	fputs("    got:  ", stdout);
	t_show(hay, hay ? strlen(hay) : 0);
	putchar('\n');
	return false;
}

void t_ctx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t_ctx_text, sizeof(t_ctx_text), fmt, ap);
	va_end(ap);
}

/* t_die - the framework itself cannot go on */
static void t_die(const char *what)
{
	fprintf(stderr, "unit: %s: %s\n", what, strerror(errno));
	exit(2);
}

char *t_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p == NULL)
		t_die("malloc");
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

char *t_tmpdir(void)
{
	char name[32];
	char *p;

	snprintf(name, sizeof(name), "d%u", t_ndirs++);
	p = t_path(t_scratch, name);
	if (mkdir(p, 0700) < 0)
		t_die(p);
	return p;
}

int t_write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(text);
	int rc = 0;

	if (fd < 0)
		return -1;
	if (write(fd, text, n) != (ssize_t)n || fchmod(fd, mode) < 0)
		rc = -1;
	close(fd);
	return rc;
}

char *t_read_file(const char *path)
{
	FILE *fp = fopen(path, "re");
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	if (fp == NULL)
		return NULL;
	out = open_memstream(&text, &len);
	if (out == NULL)
		t_die("open_memstream");
	for (int c; (c = getc(fp)) != EOF;)
		putc(c, out);
	fclose(fp);
	fclose(out);
	return text;
}

bool t_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int t_fork(void (*fn)(void *), void *arg, char *err, size_t errlen)
{
	int pfd[2], status;
	size_t used = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], 2);
		close(pfd[0]);
		fn(arg);
		fflush(NULL);
		_exit(0);
	}
	close(pfd[1]);
	for (;;) {
		char chunk[1024];
		ssize_t n = read(pfd[0], chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (used + 1 < errlen)
				err[used++] = chunk[i];
	}
	if (errlen)
		err[used] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* t_rm - nftw callback: remove one entry */
static int t_rm(const char *path, const struct stat *st, int type,
		struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* t_rmtree - rm -rf path, not following symlinks */
static void t_rmtree(const char *path)
{
	nftw(path, t_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* t_invoke - run one test in this process; true if every check passed */
static bool t_invoke(const struct t_test *t, const char *root)
{
	t_current = t->name;
	t_nfail = 0;
	t_ctx_text[0] = '\0';
	t_ndirs = 0;
	snprintf(t_scratch, sizeof(t_scratch), "%s/%s", root, t->name);
	if (mkdir(t_scratch, 0700) < 0)
		t_die(t_scratch);
	t->fn();
	fflush(stdout);
	return t_nfail == 0;
}

/* t_run - one test in a forked child; true if it passed */
static bool t_run(const struct t_test *t, const char *root, bool nofork)
{
	int pfd[2], status;
	char verdict = 0;
	pid_t pid;

	if (nofork)
		return t_invoke(t, root);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		t_die("pipe");
	fflush(NULL);
	if ((pid = fork()) < 0)
		t_die("fork");
	if (pid == 0) {
		close(pfd[0]);
		alarm(T_TIMEOUT);
		verdict = t_invoke(t, root) ? 'P' : 'F';
		if (write(pfd[1], &verdict, 1) != 1)
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	while (read(pfd[0], &verdict, 1) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			t_die("waitpid");
	if (verdict == 'P' || verdict == 'F')
		return verdict == 'P';
	if (WIFSIGNALED(status))
		printf("FAIL %s: killed by signal %d%s\n", t->name,
		       WTERMSIG(status), WTERMSIG(status) == SIGALRM ?
		       " (timed out)" : "");
	else
		printf("FAIL %s: the test process exited with status %d "
		       "before the end of the test (log_die?)\n", t->name,
		       WEXITSTATUS(status));
	return false;
}

int main(int argc, char **argv)
{
	const char *filter = NULL;
	const char *tmp = getenv("TMPDIR");
	bool nofork = getenv("OUTBOX_UNIT_NOFORK") &&
	    *getenv("OUTBOX_UNIT_NOFORK");
	bool list = false;
	unsigned passed = 0, failed = 0;
	char root[4096];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--list") == 0)
			list = true;
		else if (filter == NULL && argv[i][0] != '-')
			filter = argv[i];
		else {
			fprintf(stderr, "usage: %s [--list] [SUBSTRING]\n",
				argv[0]);
			return 2;
		}
	}
	if (list) {
		for (size_t s = 0; s < sizeof(t_suites) / sizeof(*t_suites);
		     s++)
			for (const struct t_test *t = t_suites[s]; t->name; t++)
				if (!filter || strstr(t->name, filter))
					puts(t->name);
		return 0;
	}
	snprintf(root, sizeof(root), "%s/outbox-unit.XXXXXX",
		 tmp && *tmp == '/' ? tmp : "/tmp");
	if (mkdtemp(root) == NULL)
		t_die("mkdtemp");
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t s = 0; s < sizeof(t_suites) / sizeof(*t_suites); s++) {
		for (const struct t_test *t = t_suites[s]; t->name; t++) {
			if (filter && !strstr(t->name, filter))
				continue;
			if (t_run(t, root, nofork))
				passed++;
			else
				failed++;
		}
	}
	t_rmtree(root);
	if (passed + failed == 0) {
		fprintf(stderr, "unit: no test name contains \"%s\"\n",
			filter);
		return 2;
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
