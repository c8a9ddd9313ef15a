/*
 * NAME
 *	common - what every libFuzzer harness in fuzz/ shares
 * DESCRIPTION
 *	See common.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sanitizer/allocator_interface.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz/common.h"
#include "util/buf.h"
#include "util/log.h"

#define FUZZ_TMP_MAX	8		/* scratch directories per fuzzer */
#define FUZZ_TRACK_MAX	(1 << 17)	/* live allocations tracked */

jmp_buf fuzz_die_env;
volatile bool fuzz_die_armed;
char fuzz_die_text[512];

static char *fuzz_tmp[FUZZ_TMP_MAX];
static size_t fuzz_ntmp;

/* fuzz_fail - a property does not hold: say which, and crash */
void fuzz_fail(const char *file, int line, const char *expr)
{
	fprintf(stderr, "\n%s:%d: FUZZ_ASSERT(%s) failed\n", file, line, expr);
	abort();
}

/* fuzz_rm - nftw callback: remove one entry */
static int fuzz_rm(const char *path, const struct stat *st, int type,
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

/* fuzz_rmtree - rm -rf path, not following symlinks */
static void fuzz_rmtree(const char *path)
{
	nftw(path, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* fuzz_tmp_cleanup - atexit: remove this fuzzer's scratch directories */
static void fuzz_tmp_cleanup(void)
{
	for (size_t i = 0; i < fuzz_ntmp; i++)
		fuzz_rmtree(fuzz_tmp[i]);
}

/* fuzz_tmp_base - /dev/shm when usable: fsync there costs nothing */
static const char *fuzz_tmp_base(void)
{
	const char *t = getenv("TMPDIR");

	if (access("/dev/shm", W_OK | X_OK) == 0)
		return "/dev/shm";
	return t && *t == '/' ? t : "/tmp";
}

/* fuzz_tmp_stale - remove scratch directories of fuzzers that died
 * without cleaning up ("outbox-fuzz-TAG.PID" whose PID is gone) */
static void fuzz_tmp_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *dot = strrchr(e->d_name, '.');
		char path[4096];
		struct stat st;
		long pid;

		if (strncmp(e->d_name, "outbox-fuzz-", 12) != 0 || !dot)
			continue;
		pid = strtol(dot + 1, NULL, 10);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_uid == getuid())
			fuzz_rmtree(path);
	}
	closedir(d);
}

/* fuzz_tmpdir - a fresh private directory, removed at exit */
char *fuzz_tmpdir(const char *tag)
{
	const char *base = fuzz_tmp_base();
	char path[4096];

	if (fuzz_ntmp == 0) {
		fuzz_tmp_stale(base);
		atexit(fuzz_tmp_cleanup);
	}
	if (fuzz_ntmp == FUZZ_TMP_MAX) {
		fprintf(stderr, "fuzz_tmpdir: too many directories\n");
		abort();
	}
	snprintf(path, sizeof(path), "%s/outbox-fuzz-%s.%ld", base, tag,
		 (long)getpid());
	fuzz_rmtree(path);
	if (mkdir(path, 0700) < 0) {
		perror(path);
		abort();
	}
	fuzz_tmp[fuzz_ntmp++] = xstrdup(path);
	return fuzz_tmp[fuzz_ntmp - 1];
}

/* fuzz_empty_dir - remove every entry of dir (not dir itself) */
void fuzz_empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0 && errno == EISDIR)
			fuzz_rmtree(path);
	}
	closedir(d);
}

/* fuzz_write_all - write everything or crash: the harness is broken */
static void fuzz_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("fuzz: write");
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
}

/* fuzz_memfd - an anonymous file holding data, positioned at 0 */
int fuzz_memfd(const void *data, size_t len)
{
	int fd = memfd_create("outbox-fuzz", MFD_CLOEXEC);

	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	fuzz_memfd_reset(fd, data, len);
	return fd;
}

/* fuzz_memfd_reset - make the file hold exactly data, positioned at 0 */
void fuzz_memfd_reset(int fd, const void *data, size_t len)
{
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		perror("fuzz: ftruncate");
		abort();
	}
	fuzz_write_all(fd, data, len);
	lseek(fd, 0, SEEK_SET);
}

/* fuzz_memfd_read - the whole file, NUL-terminated, malloc'd */
char *fuzz_memfd_read(int fd, size_t *len)
{
	struct stat st;
	char *text;
	ssize_t n;

	if (fstat(fd, &st) < 0) {
		perror("fuzz: fstat");
		abort();
	}
	text = xmalloc((size_t)st.st_size + 1);
	n = pread(fd, text, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		perror("fuzz: pread");
		abort();
	}
	text[n] = '\0';
	*len = (size_t)n;
	return text;
}

/* fuzz_die_hook - log_die() while armed: back to the harness */
static void fuzz_die_hook(int ex, const char *text)
{
	(void)ex;
	if (!fuzz_die_armed)
		return;		/* log_die() exits: libFuzzer reports it */
	fuzz_die_armed = false;
	snprintf(fuzz_die_text, sizeof(fuzz_die_text), "%s", text);
	longjmp(fuzz_die_env, 1);
}

/* fuzz_catch_install - route log_die() through fuzz_die_hook */
void fuzz_catch_install(void)
{
	log_set_die_hook(fuzz_die_hook);
}

/*
 * Allocation tracking: an open-addressing set of live pointers. A slot
 * belongs to the current round only if its generation matches, so a new
 * round starts in O(1); order[] lists the slots used, to free them.
 */
struct fuzz_slot {
	const volatile void *p;	/* NULL: free or a tombstone */
	unsigned gen;
};

static struct fuzz_slot fuzz_slots[2 * FUZZ_TRACK_MAX];
static size_t fuzz_order[FUZZ_TRACK_MAX];
static size_t fuzz_norder;
static unsigned fuzz_gen;
static bool fuzz_tracking;
static pthread_t fuzz_thread;
static bool fuzz_hooks;

/* fuzz_hash - slot index for p */
static size_t fuzz_hash(const volatile void *p)
{
	uintptr_t x = (uintptr_t)p;

	x ^= x >> 17;
	x *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(x >> 7) % (2 * FUZZ_TRACK_MAX);
}

/* fuzz_malloc_hook - remember a new allocation of the tracked thread */
static void fuzz_malloc_hook(const volatile void *p, size_t size)
{
	size_t i;

	(void)size;
	if (!fuzz_tracking || !pthread_equal(pthread_self(), fuzz_thread))
		return;
	if (fuzz_norder == FUZZ_TRACK_MAX) {
		fprintf(stderr, "fuzz_track: more than %d allocations\n",
			FUZZ_TRACK_MAX);
		abort();
	}
	for (i = fuzz_hash(p); fuzz_slots[i].gen == fuzz_gen;
	     i = (i + 1) % (2 * FUZZ_TRACK_MAX))
		if (fuzz_slots[i].p == NULL)
			break;	/* reuse a tombstone */
	fuzz_slots[i].p = p;
	fuzz_slots[i].gen = fuzz_gen;
	fuzz_order[fuzz_norder++] = i;
}

/* fuzz_free_hook - forget a tracked allocation */
static void fuzz_free_hook(const volatile void *p)
{
	if (!fuzz_tracking || p == NULL ||
	    !pthread_equal(pthread_self(), fuzz_thread))
		return;
	for (size_t i = fuzz_hash(p); fuzz_slots[i].gen == fuzz_gen;
	     i = (i + 1) % (2 * FUZZ_TRACK_MAX))
		if (fuzz_slots[i].p == p) {
			fuzz_slots[i].p = NULL;
			return;
		}
}

/* fuzz_track_begin - record allocations of this thread from now on */
void fuzz_track_begin(void)
{
	if (!fuzz_hooks) {
		__sanitizer_install_malloc_and_free_hooks(fuzz_malloc_hook,
							  fuzz_free_hook);
		fuzz_hooks = true;
	}
	fuzz_gen++;
	fuzz_norder = 0;
	fuzz_thread = pthread_self();
	fuzz_tracking = true;
}

/* fuzz_track_end - stop recording; the number of allocations still
 * live, which are freed when free_them is set */
size_t fuzz_track_end(bool free_them)
{
	size_t live = 0;

	fuzz_tracking = false;
	for (size_t k = 0; k < fuzz_norder; k++) {
		struct fuzz_slot *s = &fuzz_slots[fuzz_order[k]];

		if (s->gen != fuzz_gen || s->p == NULL)
			continue;
		live++;
		if (free_them)
			free((void *)(uintptr_t)s->p);
		s->p = NULL;
	}
	return live;
}
