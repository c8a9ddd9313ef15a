/*
 * NAME
 *	spool - the durable per-user queue on disk
 * DESCRIPTION
 *	See spool.h and docs/spool.md. The queue file format:
 *
 *	  OUTBOX-QUEUE 1
 *	  id 692A0E8B3D0F1A7
 *	  arrival 1764289163
 *	  sender alice@example.com     (empty value: null sender)
 *	  dsn RET=HDRS ENVID=x         (optional: DSN parameters for MAIL)
 *	  rcpt bob@example.org NOTIFY=NEVER   (one per recipient, DSN
 *	                               parameters for its RCPT optional)
 *	  size 00000000000000001234    (bytes of message)       \  fixed
 *	  body 8BITMIME                (or "7BIT    ")           > width,
 *	  smtputf8 no                  (or "want", "need")      /  last
 *	  dkim DKIM-Signature: ...     (optional, one per key, space-padded
 *	                               to a fixed width; TAB stands for a fold)
 *	  <empty line>
 *	  message, CRLF line endings, not dot-stuffed
 *
 *	The last three fields are written last, in place, before the
 *	fsync; a file whose length disagrees with it is refused as
 *	corrupt. The state file:
 *
 *	  OUTBOX-STATE 1
 *	  attempts 3
 *	  last 1764289200
 *	  next 1764289440              (optional: not before, for the runner)
 *	  flags held notified connfail (optional, any of them)
 *	  error connection refused     (optional)
 *	  r 0 d 250 2.0.0 Ok           (recipient index, state p/d/f/b, reply)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "queue/spool.h"
#include "util/buf.h"
#include "util/crash.h"
#include "util/log.h"
#include "util/sys.h"

#define SPOOL_BASE	"/var/spool/outbox"
#define SPOOL_ENV_MAX	(16 * 1024 * 1024)	/* envelope header bytes */
#define SPOOL_STALE	10			/* seconds until tmp/ cleanup */
#define SPOOL_SYNC_EVERY 64			/* removals per fsync of q/ */

/* the half-written file that log_die must remove */
static struct spool_writer *spool_armed;

/* spool_disarm_cleanup - log_die hook: unlink the armed tmp file */
static void spool_disarm_cleanup(void)
{
	if (spool_armed && spool_armed->fd >= 0)
		unlinkat(spool_armed->spool->tmpfd, spool_armed->id, 0);
	spool_armed = NULL;
}

/* spool_open_subdir - open (creating if asked) a private directory */
static int spool_open_subdir(int at, const char *name, const char *shown,
			     bool create)
{
	struct stat st;
	int fd;

	if (create && mkdirat(at, name, 0700) < 0 && errno != EEXIST)
		log_die(EX_CANTCREAT, "cannot create spool directory %s: %m",
			shown);
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return -1;
		log_die(EX_CANTCREAT, "cannot open spool directory %s: %m "
			"(a symlink is refused)", shown);
	}
	if (fstat(fd, &st) < 0 || st.st_uid != getuid() ||
	    (st.st_mode & 077))
		log_die(EX_CANTCREAT, "spool directory %s must be owned by "
			"uid %u and mode 0700; refusing to use it", shown,
			(unsigned)getuid());
	return fd;
}

/* spool_mkdirs - mkdir -p for the parents of a per-user path */
static void spool_mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		log_die(EX_CANTCREAT, "spool path too long: %s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			log_die(EX_CANTCREAT, "cannot create %s: %m", tmp);
		*p = '/';
	}
}

/* spool_locate - the spool directory for this user */
static char *spool_locate(const struct conf *c, int *basefd)
{
	const char *base = getenv("OUTBOX_SPOOL_BASE");
	const char *xdg = getenv("XDG_STATE_HOME");
	struct buf b = BUF_INIT(PATH_MAX);

	*basefd = -1;
	if (c->queue.dir)
		return xstrdup(c->queue.dir);
	if (base == NULL || *base == '\0')
		base = SPOOL_BASE;
	/* O_PATH: the base is mode 1733, searchable but not readable */
	*basefd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*basefd >= 0) {
		buf_printf(&b, "%u", (unsigned)getuid());
		return buf_steal(&b);
	}
	if (xdg && xdg[0] == '/')
		buf_printf(&b, "%s/outbox", xdg);
	else
		buf_printf(&b, "%s/.local/state/outbox", sys_home());
	return buf_steal(&b);
}

/* spool_open - open the user's spool; -1 if it does not exist yet */
int spool_open(const struct conf *c, struct spool *s, enum spool_open_mode m)
{
	bool create = m == SPOOL_CREATE;
	int basefd;
	char *name = spool_locate(c, &basefd);
	struct buf shown = BUF_INIT(PATH_MAX);
	const char *base = getenv("OUTBOX_SPOOL_BASE");

	memset(s, 0, sizeof(*s));
	s->qfd = s->tmpfd = -1;
	if (basefd >= 0)
		buf_printf(&shown, "%s/%s", base && *base ? base : SPOOL_BASE,
			   name);
	else
		buf_puts(&shown, name);
	s->path = buf_steal(&shown);
	if (basefd < 0 && create)
		spool_mkdirs(name);
	s->dirfd = spool_open_subdir(basefd >= 0 ? basefd : AT_FDCWD, name,
				     s->path, create);
	if (basefd >= 0)
		close(basefd);
	free(name);
	if (s->dirfd < 0)
		return -1;
	s->qfd = spool_open_subdir(s->dirfd, "q", s->path, create);
	s->tmpfd = spool_open_subdir(s->dirfd, "tmp", s->path, create);
	return s->qfd < 0 || s->tmpfd < 0 ? -1 : 0;
}

/* spool_close - release the directory descriptors */
void spool_close(struct spool *s)
{
	if (s->qfd >= 0)
		close(s->qfd);
	if (s->tmpfd >= 0)
		close(s->tmpfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->path);
	s->path = NULL;
	s->dirfd = s->qfd = s->tmpfd = -1;
}

/* spool_new_id - time-ordered unique id: seconds, microseconds, pid */
static void spool_new_id(char *id, size_t len)
{
	static struct timeval last;
	struct timeval tv;

	/* one process never reuses a microsecond; the pid separates us
	 * from every other live process */
	do
		gettimeofday(&tv, NULL);
	while (tv.tv_sec == last.tv_sec && tv.tv_usec == last.tv_usec);
	last = tv;
	snprintf(id, len, "%08" PRIX64 "%05lX%X", (uint64_t)tv.tv_sec,
		 (unsigned long)tv.tv_usec, (unsigned)getpid());
}

/* spool_tmp_create - O_EXCL file in tmp/, flocked; returns fd */
static int spool_tmp_create(struct spool *s, char *name, size_t len,
			    const char *suffix)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		char id[SPOOL_ID_MAX];
		int fd;

		spool_new_id(id, sizeof(id));
		snprintf(name, len, "%s%s", id, suffix);
		fd = openat(s->tmpfd, name, O_RDWR | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			flock(fd, LOCK_EX);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/* spool_create - start a new message in tmp/ and arm its cleanup */
void spool_create(struct spool *s, struct spool_writer *w)
{
	w->spool = s;
	w->used = 0;
	w->data_len = 0;
	w->eightbit = false;
	w->utf8 = UTF8_NO;
	w->dkim_slots = 0;
	w->dkim = (struct strlist)STRLIST_INIT;
	w->fd = spool_tmp_create(s, w->id, sizeof(w->id), "");
	if (w->fd < 0)
		log_die(EX_CANTCREAT, "cannot create a file in %s/tmp: %m",
			s->path);
	spool_armed = w;
	log_set_cleanup(spool_disarm_cleanup);
}

/* spool_flush - write the buffered bytes, or die */
static void spool_flush(struct spool_writer *w)
{
	size_t off = 0;

	while (off < w->used) {
		ssize_t n = write(w->fd, w->buf + off, w->used - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			log_die(errno == ENOSPC || errno == EDQUOT ?
				EX_CANTCREAT : EX_IOERR,
				"cannot write to the spool %s: %m; the message"
				" was not accepted", w->spool->path);
		off += (size_t)n;
	}
	w->used = 0;
}

/* spool_put - buffered write of raw bytes */
static void spool_put(struct spool_writer *w, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		size_t room = sizeof(w->buf) - w->used;
		size_t k = n < room ? n : room;

		memcpy(w->buf + w->used, c, k);
		w->used += k;
		c += k;
		n -= k;
		if (w->used == sizeof(w->buf))
			spool_flush(w);
	}
}

static const char *const spool_utf8_names[] = { "no", "want", "need" };

/* spool_tail - the fixed-width fields known only at the end */
static void spool_tail(const struct spool_writer *w, struct buf *b)
{
	buf_printf(b, "size %020lld\nbody %-8s\nsmtputf8 %-4s\n",
		   (long long)w->data_len, w->eightbit ? "8BITMIME" : "7BIT",
		   spool_utf8_names[w->utf8]);
	for (size_t i = 0; i < w->dkim_slots; i++)
		buf_printf(b, "dkim %-*.*s\n", SPOOL_DKIM_SLOT, SPOOL_DKIM_SLOT,
			   i < w->dkim.n ? w->dkim.v[i] : "");
	buf_putc(b, '\n');
}

/* spool_put_envelope - the queue file's header, before any message byte */
void spool_put_envelope(struct spool_writer *w, const struct spool_env *e)
{
	struct buf b = BUF_INIT(SPOOL_ENV_MAX);
	int rc = 0;

	rc |= buf_printf(&b, "OUTBOX-QUEUE 1\nid %s\narrival %lld\n"
			 "sender %s\n", w->id, (long long)sys_now(),
			 e->sender);
	if (e->mail_dsn && *e->mail_dsn)
		rc |= buf_printf(&b, "dsn %s\n", e->mail_dsn);
	for (size_t i = 0; i < e->rcpts->n; i++) {
		const char *dsn = e->rcpt_dsn ? e->rcpt_dsn->v[i] : "";

		rc |= buf_printf(&b, "rcpt %s%s%s\n", e->rcpts->v[i],
				 *dsn ? " " : "", dsn);
	}
	if (rc < 0)
		log_die(EX_DATAERR, "too many recipients for one message");
	w->dkim_slots = e->dkim_slots;
	w->tail_off = (off_t)b.len;
	spool_tail(w, &b);
	w->data_off = (off_t)b.len;
	spool_put(w, b.data, b.len);
	buf_free(&b);
}

/* spool_write - append message bytes (already CRLF) */
void spool_write(struct spool_writer *w, const void *p, size_t n)
{
	spool_put(w, p, n);
	w->data_len += (off_t)n;
}

/* spool_fsync_dir - make directory entries durable */
static int spool_fsync_dir(int dirfd)
{
	return fsync(dirfd);
}

/* spool_commit - size, fsync, link into q/, fsync q/: the mail is ours.
 * Returns 0 with m filled in and locked; -1 if the committed message
 * cannot be read back (it stays queued) */
int spool_commit(struct spool_writer *w, struct spool_msg *m)
{
	struct spool *s = w->spool;
	struct buf tail = BUF_INIT(256 + 8 * (SPOOL_DKIM_SLOT + 8));
	char err[256];

	spool_flush(w);
	spool_tail(w, &tail);
	if (pwrite(w->fd, tail.data, tail.len, w->tail_off) !=
	    (ssize_t)tail.len)
		log_die(EX_IOERR, "cannot write to the spool %s: %m", s->path);
	buf_free(&tail);
	strlist_free(&w->dkim);
	if (fsync(w->fd) < 0)
		log_die(EX_IOERR, "cannot fsync the spool file: %m; the "
			"message was not accepted");
	crash_point("before-commit");
	/* link, not rename: it cannot replace an existing message */
	if (linkat(s->tmpfd, w->id, s->qfd, w->id, 0) < 0)
		log_die(EX_CANTCREAT, "cannot commit to %s/q: %m", s->path);
	crash_point("before-dirsync");
	if (spool_fsync_dir(s->qfd) < 0) {
		unlinkat(s->qfd, w->id, 0);
		log_die(EX_IOERR, "cannot fsync %s/q: %m; the message was "
			"not accepted", s->path);
	}
	spool_armed = NULL;
	log_set_cleanup(NULL);
	unlinkat(s->tmpfd, w->id, 0);
	/* the message is now durable; keep the lock for delivery */
	crash_point("after-commit");
	if (spool_read(s, w->id, m, err, sizeof(err)) < 0) {
		log_warn("%s is queued but cannot be read back (%s); "
			 "sendmail -q will retry it", w->id, err);
		close(w->fd);
		w->fd = -1;
		return -1;
	}
	m->fd = w->fd;
	w->fd = -1;
	return 0;
}

/* spool_abort - throw away an uncommitted message */
void spool_abort(struct spool_writer *w)
{
	strlist_free(&w->dkim);
	if (w->fd >= 0) {
		unlinkat(w->spool->tmpfd, w->id, 0);
		close(w->fd);
		w->fd = -1;
	}
	spool_armed = NULL;
	log_set_cleanup(NULL);
}

/* spool_detach - unlink an uncommitted message's name but keep its
 * contents readable through the returned descriptor (re-encoding) */
int spool_detach(struct spool_writer *w)
{
	int fd = w->fd;

	spool_flush(w);
	unlinkat(w->spool->tmpfd, w->id, 0);
	w->fd = -1;
	spool_armed = NULL;
	log_set_cleanup(NULL);
	return fd;
}

/* spool_read_head - the bytes of fd up to and including "\n\n" */
static int spool_read_head(int fd, struct buf *b)
{
	char chunk[8192];
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), off);
		size_t scan_from = b->len ? b->len - 1 : 0;
		char *end;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || buf_append(b, chunk, (size_t)n) < 0)
			return -1;
		off += n;
		end = memmem(b->data + scan_from, b->len - scan_from, "\n\n",
			     2);
		if (end) {
			b->len = (size_t)(end - b->data) + 2;
			b->data[b->len] = '\0';
			return 0;
		}
	}
}

/* spool_num - strict decimal */
static int spool_num(const char *s, long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* spool_add_rcpt - one more recipient ("addr[ dsn-params]"), pending */
static void spool_add_rcpt(struct spool_msg *m, const char *line)
{
	const char *sp = strchr(line, ' ');

	if ((m->nrcpts & (m->nrcpts - 1)) == 0)
		m->rcpts = xrealloc(m->rcpts, (m->nrcpts ? m->nrcpts * 2 : 1) *
				    sizeof(*m->rcpts));
	m->rcpts[m->nrcpts].addr = sp ? xstrndup(line, (size_t)(sp - line)) :
	    xstrdup(line);
	m->rcpts[m->nrcpts].dsn = sp ? xstrdup(sp + 1) : NULL;
	m->rcpts[m->nrcpts].state = RCPT_PENDING;
	m->rcpts[m->nrcpts].reply = NULL;
	m->nrcpts++;
}

/* spool_parse_line - one "key value" line of a queue file header */
static int spool_parse_line(struct spool_msg *m, char *line)
{
	char *v = strchr(line, ' ');
	long long n;

	if (v == NULL)
		return -1;
	*v++ = '\0';
	if (strcmp(line, "id") == 0)
		return strcmp(v, m->id) == 0 ? 0 : -1;
	if (strcmp(line, "sender") == 0 && m->sender == NULL) {
		m->sender = xstrdup(v);
		return 0;
	}
	if (strcmp(line, "rcpt") == 0 && *v && *v != ' ') {	/* an address */
		spool_add_rcpt(m, v);
		return 0;
	}
	if (strcmp(line, "body") == 0 && m->body == NULL) {
		m->body = xstrndup(v, strcspn(v, " "));
		return 0;
	}
	if (strcmp(line, "dkim") == 0) {
		size_t vlen = strlen(v);

		while (vlen && v[vlen - 1] == ' ')
			vlen--;
		if (vlen)
			strlist_take(&m->dkim, xstrndup(v, vlen));
		return 0;
	}
	if (strcmp(line, "dsn") == 0 && m->mail_dsn == NULL) {
		m->mail_dsn = xstrdup(v);
		return 0;
	}
	if (strcmp(line, "smtputf8") == 0) {
		size_t vlen = strcspn(v, " ");

		for (int i = UTF8_NO; i <= UTF8_NEED; i++)
			if (strlen(spool_utf8_names[i]) == vlen &&
			    strncmp(v, spool_utf8_names[i], vlen) == 0) {
				m->smtputf8 = (enum spool_utf8)i;
				return 0;
			}
		return -1;
	}
	if (strcmp(line, "arrival") == 0 && spool_num(v, &n) == 0) {
		m->arrival = (time_t)n;
		return 0;
	}
	if (strcmp(line, "size") == 0 && spool_num(v, &n) == 0) {
		m->data_len = (off_t)n;
		return 0;
	}
	return -1;
}

/* spool_parse_head - fill m from a queue file header */
static int spool_parse_head(struct spool_msg *m, struct buf *b)
{
	char *save = NULL;
	char *line = strtok_r(b->data, "\n", &save);

	if (line == NULL || strcmp(line, "OUTBOX-QUEUE 1") != 0)
		return -1;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL)
		if (spool_parse_line(m, line) < 0)
			return -1;
	return m->sender && m->nrcpts && m->arrival && m->body ? 0 : -1;
}

/* spool_parse_flags - "held notified connfail", any of them */
static int spool_parse_flags(struct spool_msg *m, char *v)
{
	char *save = NULL;

	for (char *w = strtok_r(v, " ", &save); w; w = strtok_r(NULL, " ",
								  &save)) {
		if (strcmp(w, "held") == 0)
			m->held = true;
		else if (strcmp(w, "notified") == 0)
			m->notified = true;
		else if (strcmp(w, "connfail") == 0)
			m->conn_fail = true;
		else
			return -1;
	}
	return 0;
}

/* spool_parse_state_line - one line of a state file */
static int spool_parse_state_line(struct spool_msg *m, char *line)
{
	long long n;
	char *v = strchr(line, ' '), *rest;

	if (v == NULL)
		return -1;
	*v++ = '\0';
	if (strcmp(line, "attempts") == 0 && spool_num(v, &n) == 0)
		m->attempts = (unsigned)n;
	else if (strcmp(line, "last") == 0 && spool_num(v, &n) == 0)
		m->last_try = (time_t)n;
	else if (strcmp(line, "next") == 0 && spool_num(v, &n) == 0)
		m->next_try = (time_t)n;
	else if (strcmp(line, "flags") == 0)
		return spool_parse_flags(m, v);
	else if (strcmp(line, "error") == 0 && m->error == NULL)
		m->error = xstrdup(v);
	else if (strcmp(line, "r") == 0) {
		n = strtoll(v, &rest, 10);
		if (rest == v || n < 0 || (size_t)n >= m->nrcpts ||
		    rest[0] != ' ' || !strchr("pdfb", rest[1]) || !rest[1])
			return -1;
		m->rcpts[n].state = rest[1];
		free(m->rcpts[n].reply);
		m->rcpts[n].reply = rest[2] == ' ' ? xstrdup(rest + 3) : NULL;
	} else
		return -1;
	return 0;
}

/* spool_read_state - apply q/ID.st, if any, to m */
static int spool_read_state(struct spool *s, struct spool_msg *m)
{
	char name[SPOOL_ID_MAX + 4];
	struct buf b = BUF_INIT(SPOOL_ENV_MAX);
	char *save = NULL, *line;
	int fd, rc = 0;

	snprintf(name, sizeof(name), "%s.st", m->id);
	fd = openat(s->qfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (spool_read_head(fd, &b) < 0)
		rc = -1;
	close(fd);
	line = rc == 0 ? strtok_r(b.data, "\n", &save) : NULL;
	if (line == NULL || strcmp(line, "OUTBOX-STATE 1") != 0)
		rc = -1;
	while (rc == 0 && (line = strtok_r(NULL, "\n", &save)) != NULL)
		rc = spool_parse_state_line(m, line);
	buf_free(&b);
	return rc;
}

/* spool_read_fd - parse the queue file open on fd into m */
static int spool_read_fd(struct spool *s, int fd, struct spool_msg *m,
			 char *err, size_t errlen)
{
	struct buf b = BUF_INIT(SPOOL_ENV_MAX);
	struct stat st;
	int rc = spool_read_head(fd, &b);

	if (rc == 0) {
		m->data_off = (off_t)b.len;
		rc = spool_parse_head(m, &b);
	}
	buf_free(&b);
	/* data_len is any decimal the file holds: subtract, never add */
	if (rc < 0 || fstat(fd, &st) < 0 ||
	    st.st_size - m->data_off != m->data_len) {
		snprintf(err, errlen, "%s: corrupt queue file, left alone",
			 m->id);
		return -1;
	}
	if (spool_read_state(s, m) < 0) {
		snprintf(err, errlen, "%s: corrupt state file, left alone",
			 m->id);
		return -1;
	}
	return 0;
}

/* spool_msg_init - empty message for id */
static void spool_msg_init(struct spool_msg *m, const char *id)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->fd = -1;
}

/* spool_read - parse q/ID without locking it (listing) */
int spool_read(struct spool *s, const char *id, struct spool_msg *m,
	       char *err, size_t errlen)
{
	int fd, rc;

	spool_msg_init(m, id);
	fd = openat(s->qfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", id, strerror(errno));
		return -1;
	}
	rc = spool_read_fd(s, fd, m, err, errlen);
	close(fd);
	if (rc < 0)
		spool_msg_free(m);
	return rc;
}

/* spool_lock - take the message lock and read the message */
enum spool_lock spool_lock(struct spool *s, const char *id,
			   struct spool_msg *m, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	spool_msg_init(m, id);
	fd = openat(s->qfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SPOOL_GONE : SPOOL_BAD;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return SPOOL_BUSY;
	}
	/* the holder before us may have delivered and removed it */
	if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
		close(fd);
		return SPOOL_GONE;
	}
	if (spool_read_fd(s, fd, m, err, errlen) < 0) {
		close(fd);
		spool_msg_free(m);
		return SPOOL_BAD;
	}
	m->fd = fd;
	return SPOOL_LOCKED;
}

/* spool_state_text - the state file's contents for m */
static void spool_state_text(const struct spool_msg *m, struct buf *b)
{
	buf_printf(b, "OUTBOX-STATE 1\nattempts %u\nlast %lld\n", m->attempts,
		   (long long)m->last_try);
	if (m->next_try)
		buf_printf(b, "next %lld\n", (long long)m->next_try);
	if (m->held || m->notified || m->conn_fail)
		buf_printf(b, "flags%s%s%s\n", m->held ? " held" : "",
			   m->notified ? " notified" : "",
			   m->conn_fail ? " connfail" : "");
	if (m->error)
		buf_printf(b, "error %s\n", m->error);
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct spool_rcpt *r = &m->rcpts[i];

		if (r->state == RCPT_PENDING && r->reply == NULL)
			continue;
		buf_printf(b, "r %zu %c", i, r->state);
		if (r->reply)
			buf_printf(b, " %s", r->reply);
		buf_putc(b, '\n');
	}
	buf_putc(b, '\n');
}

/* spool_write_all - write(2) everything or fail */
static int spool_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* spool_save_state - replace q/ID.st atomically; m must be locked */
int spool_save_state(struct spool *s, struct spool_msg *m)
{
	char tmp[SPOOL_ID_MAX + 8], name[SPOOL_ID_MAX + 4];
	struct buf b = BUF_INIT(SPOOL_ENV_MAX);
	int fd, rc = -1;

	snprintf(name, sizeof(name), "%s.st", m->id);
	spool_state_text(m, &b);
	fd = spool_tmp_create(s, tmp, sizeof(tmp), ".st");
	if (fd >= 0 && spool_write_all(fd, b.data, b.len) == 0 &&
	    fsync(fd) == 0) {
		crash_point("state-written");
		rc = renameat(s->tmpfd, tmp, s->qfd, name);
		if (rc == 0)
			rc = spool_fsync_dir(s->qfd);
	}
	if (rc < 0) {
		log_warn("%s: cannot save delivery state in %s: %m", m->id,
			 s->path);
		if (fd >= 0)
			unlinkat(s->tmpfd, tmp, 0);
	}
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	return rc;
}

/* spool_remove - the message is done: unlink it, then its state. q/ is
 * fsync'd once per SPOOL_SYNC_EVERY removals and by spool_sync(), not
 * per message: a removal lost to a power cut only resends a message */
int spool_remove(struct spool *s, struct spool_msg *m)
{
	char name[SPOOL_ID_MAX + 4];

	if (unlinkat(s->qfd, m->id, 0) < 0) {
		log_warn("%s: cannot remove from %s: %m", m->id, s->path);
		return -1;
	}
	crash_point("after-unlink");
	snprintf(name, sizeof(name), "%s.st", m->id);
	unlinkat(s->qfd, name, 0);
	if (++s->unsynced >= SPOOL_SYNC_EVERY)
		return spool_sync(s);
	return 0;
}

/* spool_sync - make the removals so far durable: one fsync of q/ */
int spool_sync(struct spool *s)
{
	if (s->unsynced == 0)
		return 0;
	s->unsynced = 0;
	return spool_fsync_dir(s->qfd);
}

/* spool_msg_free - release m, closing (and so unlocking) its file */
void spool_msg_free(struct spool_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	for (size_t i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].dsn);
		free(m->rcpts[i].reply);
	}
	free(m->rcpts);
	strlist_free(&m->dkim);
	free(m->sender);
	free(m->body);
	free(m->mail_dsn);
	free(m->error);
	m->rcpts = NULL;
	m->nrcpts = 0;
	m->sender = m->error = m->body = m->mail_dsn = NULL;
}

/* spool_pending - recipients still to deliver */
size_t spool_pending(const struct spool_msg *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nrcpts; i++)
		n += m->rcpts[i].state == RCPT_PENDING;
	return n;
}

/* spool_id_valid - the shape of a queue id: upper-case hex */
bool spool_id_valid(const char *id)
{
	size_t n = strspn(id, "0123456789ABCDEF");

	return n >= 8 && n < SPOOL_ID_MAX && id[n] == '\0';
}

/* spool_cmp - qsort by id, which is by arrival */
static int spool_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* spool_list - ids of committed messages, oldest first */
int spool_list(struct spool *s, struct strlist *ids)
{
	int fd = dup(s->qfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL)
		if (spool_id_valid(e->d_name))
			strlist_add(ids, e->d_name);
	closedir(d);
	if (ids->n)
		qsort(ids->v, ids->n, sizeof(*ids->v), spool_cmp);
	return 0;
}

/* spool_clean_tmp_entry - remove a tmp/ file whose writer is gone */
static void spool_clean_tmp_entry(struct spool *s, const char *name)
{
	struct stat st;
	int fd = openat(s->tmpfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
			O_NONBLOCK);

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_mtime < time(NULL) - SPOOL_STALE &&
	    flock(fd, LOCK_EX | LOCK_NB) == 0)
		unlinkat(s->tmpfd, name, 0);
	close(fd);
}

/* spool_clean_orphan - remove q/ID.st whose q/ID is gone */
static void spool_clean_orphan(struct spool *s, const char *name)
{
	char id[SPOOL_ID_MAX];
	size_t len = strlen(name);

	if (len < 4 || len - 3 >= sizeof(id) ||
	    strcmp(name + len - 3, ".st") != 0)
		return;
	memcpy(id, name, len - 3);
	id[len - 3] = '\0';
	if (faccessat(s->qfd, id, F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno == ENOENT)
		unlinkat(s->qfd, name, 0);
}

/* spool_scan - call fn for each entry of a spool subdirectory */
static void spool_scan(struct spool *s, int dirfd,
		       void (*fn)(struct spool *, const char *))
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			fn(s, e->d_name);
	closedir(d);
}

/* spool_clean - recover crash leftovers (docs/spool.md) */
void spool_clean(struct spool *s)
{
	spool_scan(s, s->tmpfd, spool_clean_tmp_entry);
	spool_scan(s, s->qfd, spool_clean_orphan);
}
