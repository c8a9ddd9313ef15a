/*
 * NAME
 *	test_spool - queue/spool.c: the on-disk queue
 * DESCRIPTION
 *	Each test builds a struct conf in memory whose queue.dir is a fresh
 *	directory (the spool functions read nothing else of it). Creating
 *	and committing die on errors (log_die), which fails the test, since
 *	main.c runs each test in its own process; the cases that must die
 *	run in a t_fork() child. flock(2) locks belong to an open file
 *	description, so "another holder" is played by a forked child.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "queue/spool.h"
#include "tests/unit/t.h"
#include "util/log.h"
#include "util/strlist.h"

struct fix {
	struct conf conf;	/* only queue.dir is set */
	struct spool s;
	char *dir;		/* the spool directory */
};

/* fix_open - a new spool in a fresh directory; false on failure */
static bool fix_open(struct fix *f)
{
	char *base = t_tmpdir();

	memset(f, 0, sizeof(*f));
	f->dir = t_path(base, "spool");
	free(base);
	f->conf.queue.dir = f->dir;
	return T_INTEQ(spool_open(&f->conf, &f->s, SPOOL_CREATE), 0);
}

/* fix_close - release the spool */
static void fix_close(struct fix *f)
{
	spool_close(&f->s);
	free(f->dir);
}

/* qpath - "<spool>/<sub>/<name>", malloc'd */
static char *qpath(const struct fix *f, const char *sub, const char *name)
{
	char *d = t_path(f->dir, sub);
	char *p = t_path(d, name);

	free(d);
	return p;
}

/* put_envelope - spool_put_envelope with only a sender and recipients */
static void put_envelope(struct spool_writer *w, const char *sender,
			 const struct strlist *rcpts)
{
	struct spool_env e = { .sender = sender, .rcpts = rcpts };

	spool_put_envelope(w, &e);
}

/* queue - submit data from sender to the NULL-terminated rcpts into f's
 * spool; m is the committed, locked message */
static void queue(struct fix *f, const char *sender, const char *const *rcpts,
		  const char *data, size_t len, struct spool_msg *m)
{
	struct spool_writer *w = malloc(sizeof(*w));
	struct strlist l = STRLIST_INIT;

	for (; *rcpts; rcpts++)
		strlist_add(&l, *rcpts);
	spool_create(&f->s, w);
	put_envelope(w, sender, &l);
	spool_write(w, data, len);
	T_INTEQ(spool_commit(w, m), 0);
	strlist_free(&l);
	free(w);
}

/* queue_simple - one recipient, a short message; m is freed (unlocked) */
static void queue_simple(struct fix *f, char *id, size_t idlen)
{
	static const char *const rcpts[] = { "bob@example.org", NULL };
	static const char data[] = "Subject: t\r\n\r\nhello\r\n";
	struct spool_msg m;

	queue(f, "alice@example.com", rcpts, data, strlen(data), &m);
	snprintf(id, idlen, "%s", m.id);
	spool_msg_free(&m);
}

/* count_entries - entries in dir other than . and .. (-1 on error) */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* check_private_dir - path is a directory of mode 0700 */
static void check_private_dir(const char *path)
{
	struct stat st;

	T_CTX("%s", path);
	if (T_INTEQ(lstat(path, &st), 0)) {
		T_CHECK(S_ISDIR(st.st_mode));
		T_INTEQ(st.st_mode & 07777, 0700);
		T_INTEQ(st.st_uid, getuid());
	}
	T_CTX("%s", "");
}

/* SPOOL_CREATE makes the spool, q/ and tmp/, all mode 0700 */
static void spool_open_creates_private_dirs(void)
{
	struct fix f;
	char *q, *tmp;

	if (!fix_open(&f))
		return;
	q = t_path(f.dir, "q");
	tmp = t_path(f.dir, "tmp");
	check_private_dir(f.dir);
	check_private_dir(q);
	check_private_dir(tmp);
	T_CHECK(f.s.dirfd >= 0 && f.s.qfd >= 0 && f.s.tmpfd >= 0);
	free(q);
	free(tmp);
	fix_close(&f);
}

/* SPOOL_EXISTING on a missing spool returns -1 and creates nothing */
static void spool_open_existing_missing(void)
{
	struct conf conf;
	struct spool s;
	char *base = t_tmpdir();
	char *dir = t_path(base, "none");

	memset(&conf, 0, sizeof(conf));
	conf.queue.dir = dir;
	T_INTEQ(spool_open(&conf, &s, SPOOL_EXISTING), -1);
	T_CHECK(!t_exists(dir));
	spool_close(&s);
	free(dir);
	free(base);
}

/* SPOOL_EXISTING opens a spool made earlier */
static void spool_open_existing_present(void)
{
	struct fix f;
	struct spool again;

	if (!fix_open(&f))
		return;
	T_INTEQ(spool_open(&f.conf, &again, SPOOL_EXISTING), 0);
	spool_close(&again);
	fix_close(&f);
}

/* create, envelope, write, commit: spool_commit fills the message */
static void spool_commit_round_trip(void)
{
	static const char *const rcpts[] = { "bob@example.org",
					     "carol@example.net", NULL };
	static const char data[] = "Subject: hi\r\n\r\nline one\r\n.dot\r\n";
	struct fix f;
	struct spool_msg m;
	char back[sizeof(data)];
	time_t before = time(NULL);
	char *qfile, *tmpdir;

	if (!fix_open(&f))
		return;
	queue(&f, "alice@example.com", rcpts, data, strlen(data), &m);
	T_CHECK(spool_id_valid(m.id));
	T_STREQ(m.sender, "alice@example.com");
	if (T_INTEQ(m.nrcpts, 2)) {
		T_STREQ(m.rcpts[0].addr, "bob@example.org");
		T_STREQ(m.rcpts[1].addr, "carol@example.net");
		T_INTEQ(m.rcpts[0].state, RCPT_PENDING);
		T_INTEQ(m.rcpts[1].state, RCPT_PENDING);
		T_STREQ(m.rcpts[0].reply, NULL);
	}
	T_INTEQ(spool_pending(&m), 2);
	T_INTEQ(m.data_len, strlen(data));
	T_CHECK(m.data_off > 0);
	T_CHECK(m.arrival >= before && m.arrival <= time(NULL));
	T_INTEQ(m.attempts, 0);
	T_STREQ(m.error, NULL);
	if (T_CHECK(m.fd >= 0)) {
		T_INTEQ(pread(m.fd, back, sizeof(back), m.data_off),
			strlen(data));
		T_MEMEQ(back, strlen(data), data, strlen(data));
	}
	qfile = qpath(&f, "q", m.id);
	tmpdir = t_path(f.dir, "tmp");
	T_CHECK(t_exists(qfile));
	T_INTEQ(count_entries(tmpdir), 0);
	spool_msg_free(&m);
	free(qfile);
	free(tmpdir);
	fix_close(&f);
}

/* a message bigger than the writer's buffer round-trips byte for byte */
static void spool_large_message_round_trip(void)
{
	static const char *const rcpts[] = { "bob@example.org", NULL };
	size_t n = 200 * 1024 + 17;
	char *data = malloc(n), *back = malloc(n);
	struct fix f;
	struct spool_msg m;

	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + i % 26);
	if (!fix_open(&f))
		return;
	queue(&f, "alice@example.com", rcpts, data, n, &m);
	T_INTEQ(m.data_len, n);
	T_INTEQ(pread(m.fd, back, n, m.data_off), n);
	T_CHECK(memcmp(back, data, n) == 0);
	spool_msg_free(&m);
	free(data);
	free(back);
	fix_close(&f);
}

/* the null sender "" round-trips as "" */
static void spool_null_sender(void)
{
	static const char *const rcpts[] = { "bob@example.org", NULL };
	struct fix f;
	struct spool_msg m;
	char err[256] = "";
	char id[SPOOL_ID_MAX];

	if (!fix_open(&f))
		return;
	queue(&f, "", rcpts, "x\r\n", 3, &m);
	T_STREQ(m.sender, "");
	snprintf(id, sizeof(id), "%s", m.id);
	spool_msg_free(&m);
	if (T_INTEQ(spool_read(&f.s, id, &m, err, sizeof(err)), 0)) {
		T_STREQ(m.sender, "");
		T_INTEQ(m.nrcpts, 1);
		spool_msg_free(&m);
	}
	fix_close(&f);
}

/* the DSN parameters (MAIL and per RCPT), BODY and SMTPUTF8 round-trip;
 * without them: no DSN, BODY 7BIT, SMTPUTF8 not needed */
static void spool_envelope_options(void)
{
	struct fix f;
	struct strlist rcpts = STRLIST_INIT, dsn = STRLIST_INIT;
	struct spool_writer *w = malloc(sizeof(*w));
	struct spool_env e = {
		.sender = "alice@example.com",
		.mail_dsn = "RET=HDRS ENVID=abc",
		.rcpts = &rcpts,
		.rcpt_dsn = &dsn,
	};
	struct spool_msg m;
	char id[SPOOL_ID_MAX], err[256] = "";

	if (!fix_open(&f))
		return;
	strlist_add(&rcpts, "bob@example.org");
	strlist_add(&rcpts, "carol@example.net");
	strlist_add(&dsn, "NOTIFY=NEVER ORCPT=rfc822;bob@example.org");
	strlist_add(&dsn, "");
	spool_create(&f.s, w);
	spool_put_envelope(w, &e);
	spool_write(w, "x\r\n", 3);
	w->eightbit = true;
	w->utf8 = UTF8_NEED;
	if (!T_INTEQ(spool_commit(w, &m), 0))
		goto out;
	snprintf(id, sizeof(id), "%s", m.id);
	spool_msg_free(&m);
	if (!T_INTEQ(spool_read(&f.s, id, &m, err, sizeof(err)), 0))
		goto out;
	T_STREQ(m.body, "8BITMIME");
	T_STREQ(m.mail_dsn, "RET=HDRS ENVID=abc");
	T_INTEQ(m.smtputf8, UTF8_NEED);
	T_INTEQ(m.data_len, 3);
	if (T_INTEQ(m.nrcpts, 2)) {
		T_STREQ(m.rcpts[0].addr, "bob@example.org");
		T_STREQ(m.rcpts[0].dsn,
			"NOTIFY=NEVER ORCPT=rfc822;bob@example.org");
		T_STREQ(m.rcpts[1].addr, "carol@example.net");
		T_STREQ(m.rcpts[1].dsn, NULL);
	}
	spool_msg_free(&m);

	queue_simple(&f, id, sizeof(id));
	if (T_INTEQ(spool_read(&f.s, id, &m, err, sizeof(err)), 0)) {
		T_STREQ(m.body, "7BIT");
		T_STREQ(m.mail_dsn, NULL);
		T_INTEQ(m.smtputf8, UTF8_NO);
		T_STREQ(m.rcpts[0].dsn, NULL);
		spool_msg_free(&m);
	}
out:
	strlist_free(&rcpts);
	strlist_free(&dsn);
	free(w);
	fix_close(&f);
}

/* lock_child - t_fork body: exit with spool_lock's result for the id */
struct lock_arg {
	struct spool *s;
	const char *id;
};

static void lock_child(void *arg)
{
	struct lock_arg *a = arg;
	struct spool_msg m;
	char err[256];

	_exit(spool_lock(a->s, a->id, &m, err, sizeof(err)));
}

/* the committer keeps the message lock: another process gets BUSY until
 * the message is freed, then LOCKED */
static void spool_commit_keeps_lock(void)
{
	static const char *const rcpts[] = { "bob@example.org", NULL };
	struct fix f;
	struct spool_msg m;
	struct lock_arg a;
	char id[SPOOL_ID_MAX], err[512];

	if (!fix_open(&f))
		return;
	queue(&f, "alice@example.com", rcpts, "x\r\n", 3, &m);
	snprintf(id, sizeof(id), "%s", m.id);
	a.s = &f.s;
	a.id = id;
	T_INTEQ(t_fork(lock_child, &a, err, sizeof(err)), SPOOL_BUSY);
	spool_msg_free(&m);
	T_INTEQ(t_fork(lock_child, &a, err, sizeof(err)), SPOOL_LOCKED);
	fix_close(&f);
}

/* flock is per open file description: even the holder's own second
 * spool_lock is BUSY */
static void spool_lock_same_process_busy(void)
{
	static const char *const rcpts[] = { "bob@example.org", NULL };
	struct fix f;
	struct spool_msg m, m2;
	char err[256];

	if (!fix_open(&f))
		return;
	queue(&f, "alice@example.com", rcpts, "x\r\n", 3, &m);
	T_INTEQ(spool_lock(&f.s, m.id, &m2, err, sizeof(err)), SPOOL_BUSY);
	T_INTEQ(m2.fd, -1);
	spool_msg_free(&m);
	fix_close(&f);
}

/* spool_lock of a free message: LOCKED, read, and held against others */
static void spool_lock_free_message(void)
{
	struct fix f;
	struct spool_msg m;
	struct lock_arg a;
	char id[SPOOL_ID_MAX], err[256];

	if (!fix_open(&f))
		return;
	queue_simple(&f, id, sizeof(id));
	if (!T_INTEQ(spool_lock(&f.s, id, &m, err, sizeof(err)),
		     SPOOL_LOCKED))
		goto out;
	T_STREQ(m.sender, "alice@example.com");
	T_CHECK(m.fd >= 0);
	a.s = &f.s;
	a.id = id;
	T_INTEQ(t_fork(lock_child, &a, err, sizeof(err)), SPOOL_BUSY);
	spool_msg_free(&m);
out:
	fix_close(&f);
}

/* spool_lock of an id that is not there is GONE */
static void spool_lock_missing(void)
{
	struct fix f;
	struct spool_msg m;
	char err[256];

	if (!fix_open(&f))
		return;
	T_INTEQ(spool_lock(&f.s, "0123456789ABCDEF", &m, err, sizeof(err)),
		SPOOL_GONE);
	fix_close(&f);
}

/* spool_save_state: states, replies, attempts, error read back */
static void spool_save_state_round_trip(void)
{
	static const char *const rcpts[] = {
		"a@x", "b@x", "c@x", "d@x", NULL
	};
	struct fix f;
	struct spool_msg m;
	char id[SPOOL_ID_MAX], err[256] = "";
	char stname[SPOOL_ID_MAX + 4];
	char *stfile, *tmpdir;

	if (!fix_open(&f))
		return;
	queue(&f, "alice@example.com", rcpts, "x\r\n", 3, &m);
	snprintf(id, sizeof(id), "%s", m.id);
	snprintf(stname, sizeof(stname), "%s.st", id);
	stfile = qpath(&f, "q", stname);
	m.attempts = 3;
	m.last_try = 1764289200;
	m.error = strdup("connection refused");
	m.rcpts[0].state = RCPT_DONE;
	m.rcpts[0].reply = strdup("250 2.0.0 Ok: queued as 12345");
	m.rcpts[1].state = RCPT_FAILED;
	m.rcpts[1].reply = strdup("550 5.1.1 No such user");
	m.rcpts[2].reply = strdup("451 4.3.0 try later");
	T_INTEQ(spool_save_state(&f.s, &m), 0);
	T_CHECK(t_exists(stfile));
	tmpdir = t_path(f.dir, "tmp");
	T_INTEQ(count_entries(tmpdir), 0);
	spool_msg_free(&m);

	if (!T_INTEQ(spool_read(&f.s, id, &m, err, sizeof(err)), 0)) {
		printf("    err: %s\n", err);
		goto out;
	}
	T_INTEQ(m.attempts, 3);
	T_INTEQ(m.last_try, 1764289200);
	T_STREQ(m.error, "connection refused");
	if (T_INTEQ(m.nrcpts, 4)) {
		T_INTEQ(m.rcpts[0].state, RCPT_DONE);
		T_STREQ(m.rcpts[0].reply, "250 2.0.0 Ok: queued as 12345");
		T_INTEQ(m.rcpts[1].state, RCPT_FAILED);
		T_STREQ(m.rcpts[1].reply, "550 5.1.1 No such user");
		T_INTEQ(m.rcpts[2].state, RCPT_PENDING);
		T_STREQ(m.rcpts[2].reply, "451 4.3.0 try later");
		T_INTEQ(m.rcpts[3].state, RCPT_PENDING);
		T_STREQ(m.rcpts[3].reply, NULL);
	}
	T_INTEQ(spool_pending(&m), 2);
	T_INTEQ(m.fd, -1);
	spool_msg_free(&m);

	/* the same through the lock */
	if (T_INTEQ(spool_lock(&f.s, id, &m, err, sizeof(err)),
		    SPOOL_LOCKED)) {
		T_INTEQ(m.attempts, 3);
		if (T_INTEQ(m.nrcpts, 4))
			T_INTEQ(m.rcpts[1].state, RCPT_FAILED);
		spool_msg_free(&m);
	}
out:
	free(stfile);
	free(tmpdir);
	fix_close(&f);
}

/* a second save replaces the first state entirely */
static void spool_save_state_replaces(void)
{
	static const char *const rcpts[] = { "a@x", "b@x", NULL };
	struct fix f;
	struct spool_msg m;
	char id[SPOOL_ID_MAX], err[256];

	if (!fix_open(&f))
		return;
	queue(&f, "alice@example.com", rcpts, "x\r\n", 3, &m);
	snprintf(id, sizeof(id), "%s", m.id);
	m.attempts = 1;
	m.error = strdup("first error");
	m.rcpts[0].state = RCPT_DONE;
	T_INTEQ(spool_save_state(&f.s, &m), 0);
	m.attempts = 2;
	free(m.error);
	m.error = NULL;
	m.rcpts[1].state = RCPT_DONE;
	T_INTEQ(spool_save_state(&f.s, &m), 0);
	spool_msg_free(&m);
	if (T_INTEQ(spool_read(&f.s, id, &m, err, sizeof(err)), 0)) {
		T_INTEQ(m.attempts, 2);
		T_STREQ(m.error, NULL);
		T_INTEQ(spool_pending(&m), 0);
		spool_msg_free(&m);
	}
	fix_close(&f);
}

/* removals are made durable in batches: q/ is fsync'd every 64 */
static void spool_remove_syncs_in_batches(void)
{
	static const char *const rcpts[] = { "a@x", NULL };
	struct fix f;
	struct spool_msg m;

	if (!fix_open(&f))
		return;
	for (int i = 0; i < 70; i++) {
		queue(&f, "alice@example.com", rcpts, "x\r\n", 3, &m);
		T_INTEQ(spool_remove(&f.s, &m), 0);
		spool_msg_free(&m);
	}
	T_INTEQ(f.s.unsynced, 70 - 64);
	T_INTEQ(spool_sync(&f.s), 0);
	T_INTEQ(f.s.unsynced, 0);
	fix_close(&f);
}

/* spool_remove deletes q/ID and q/ID.st; the id is then GONE */
static void spool_remove_deletes_both(void)
{
	static const char *const rcpts[] = { "a@x", NULL };
	struct fix f;
	struct spool_msg m;
	char id[SPOOL_ID_MAX], err[256], stname[SPOOL_ID_MAX + 4];
	char *qfile, *stfile;

	if (!fix_open(&f))
		return;
	queue(&f, "alice@example.com", rcpts, "x\r\n", 3, &m);
	snprintf(id, sizeof(id), "%s", m.id);
	snprintf(stname, sizeof(stname), "%s.st", id);
	qfile = qpath(&f, "q", id);
	stfile = qpath(&f, "q", stname);
	m.rcpts[0].state = RCPT_DONE;
	T_INTEQ(spool_save_state(&f.s, &m), 0);
	T_CHECK(t_exists(stfile));
	T_INTEQ(spool_remove(&f.s, &m), 0);
	T_CHECK(!t_exists(qfile));
	T_CHECK(!t_exists(stfile));
	T_INTEQ(f.s.unsynced, 1);	/* q/ is synced later, in a batch */
	T_INTEQ(spool_sync(&f.s), 0);
	T_INTEQ(f.s.unsynced, 0);
	spool_msg_free(&m);
	T_INTEQ(spool_lock(&f.s, id, &m, err, sizeof(err)), SPOOL_GONE);
	free(qfile);
	free(stfile);
	fix_close(&f);
}

/* spool_list: valid ids only, sorted; .st files and junk are ignored */
static void spool_list_sorted_ignores_junk(void)
{
	static const char *junk[] = {
		"junk", "0123456", "0123456789abcdef", ".hidden",
		"0123456789ABCDEF0123456789ABCDEF", "0123456789ABCDEF.st",
		"0123456789ABCDEG",
	};
	static const char *planted[] = {
		"00000002000000B", "00000001000000A", "FFFFFFFF0000000",
	};
	struct fix f;
	struct strlist ids = STRLIST_INIT;
	char queued[3][SPOOL_ID_MAX];

	if (!fix_open(&f))
		return;
	for (int i = 0; i < 3; i++)
		queue_simple(&f, queued[i], sizeof(queued[i]));
	for (size_t i = 0; i < sizeof(junk) / sizeof(*junk); i++) {
		char *p = qpath(&f, "q", junk[i]);

		t_write_file(p, "junk\n", 0600);
		free(p);
	}
	for (size_t i = 0; i < sizeof(planted) / sizeof(*planted); i++) {
		char *p = qpath(&f, "q", planted[i]);

		t_write_file(p, "not parsed by spool_list\n", 0600);
		free(p);
	}
	T_INTEQ(spool_list(&f.s, &ids), 0);
	if (T_INTEQ(ids.n, 6)) {
		T_STREQ(ids.v[0], "00000001000000A");
		T_STREQ(ids.v[1], "00000002000000B");
		T_STREQ(ids.v[5], "FFFFFFFF0000000");
		for (size_t i = 1; i < ids.n; i++)
			T_CHECK(strcmp(ids.v[i - 1], ids.v[i]) < 0);
		for (int i = 0; i < 3; i++)
			T_CHECK(strlist_has_nocase(&ids, queued[i]));
	}
	strlist_free(&ids);
	fix_close(&f);
}

/* ids of messages queued one after another are distinct and increase */
static void spool_ids_increase(void)
{
	struct fix f;
	char prev[SPOOL_ID_MAX] = "", id[SPOOL_ID_MAX];

	if (!fix_open(&f))
		return;
	for (int i = 0; i < 20; i++) {
		queue_simple(&f, id, sizeof(id));
		T_CTX("message %d: %s after %s", i, id, prev);
		T_CHECK(strcmp(prev, id) < 0);
		snprintf(prev, sizeof(prev), "%s", id);
	}
	fix_close(&f);
}

enum damage { TRUNCATE, BAD_MAGIC, EXTRA_BYTE, NO_HEADER_END, WRONG_ID };

/* damage_file - spoil the queue file at path in one way */
static void damage_file(const char *path, enum damage how)
{
	struct stat st;
	int fd = open(path, O_RDWR);

	if (!T_CHECK(fd >= 0) || !T_CHECK(fstat(fd, &st) == 0))
		return;
	switch (how) {
	case TRUNCATE:
		T_CHECK(ftruncate(fd, st.st_size - 1) == 0);
		break;
	case BAD_MAGIC:
		T_CHECK(pwrite(fd, "X", 1, 0) == 1);
		break;
	case EXTRA_BYTE:
		T_CHECK(pwrite(fd, "x", 1, st.st_size) == 1);
		break;
	case NO_HEADER_END:
		T_CHECK(ftruncate(fd, 0) == 0);
		T_CHECK(pwrite(fd, "OUTBOX-QUEUE 1\nsender a@b\n", 26, 0) ==
			26);
		break;
	case WRONG_ID:
		break;
	}
	close(fd);
}

/* a damaged queue file is refused as corrupt by read and lock */
static void spool_read_corrupt_queue_file(void)
{
	static const struct {
		enum damage how;
		const char *name;
	} c[] = {
		{ TRUNCATE, "truncated by one byte" },
		{ BAD_MAGIC, "wrong magic" },
		{ EXTRA_BYTE, "size mismatch (one byte more)" },
		{ NO_HEADER_END, "no blank line after the header" },
		{ WRONG_ID, "renamed to another id" },
	};
	struct fix f;

	if (!fix_open(&f))
		return;
	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct spool_msg m;
		char id[SPOOL_ID_MAX], err[256] = "";
		char *path;

		T_CTX("%s", c[i].name);
		queue_simple(&f, id, sizeof(id));
		path = qpath(&f, "q", id);
		damage_file(path, c[i].how);
		if (c[i].how == WRONG_ID) {
			char *other = qpath(&f, "q", "0000000100000001");

			T_CHECK(rename(path, other) == 0);
			free(path);
			path = other;
			snprintf(id, sizeof(id), "0000000100000001");
		}
		T_INTEQ(spool_read(&f.s, id, &m, err, sizeof(err)), -1);
		T_CONTAINS(err, "corrupt queue file");
		T_CONTAINS(err, id);
		T_STREQ(m.sender, NULL);
		err[0] = '\0';
		T_INTEQ(spool_lock(&f.s, id, &m, err, sizeof(err)), SPOOL_BAD);
		T_CONTAINS(err, "corrupt");
		T_CHECK(t_exists(path));	/* left alone */
		free(path);
	}
	fix_close(&f);
}

/* a damaged state file makes the message unreadable */
static void spool_read_corrupt_state_file(void)
{
	static const char *bad[] = {
		"garbage\n\n",
		"OUTBOX-STATE 2\nattempts 1\n\n",
		"OUTBOX-STATE 1\nattempts 1\n",		/* no blank line */
		"OUTBOX-STATE 1\nr 1 d\n\n",		/* only rcpt 0 */
		"OUTBOX-STATE 1\nr -1 d\n\n",
		"OUTBOX-STATE 1\nr 0 x\n\n",
		"OUTBOX-STATE 1\nr 0\n\n",
		"OUTBOX-STATE 1\nattempts many\n\n",
		"OUTBOX-STATE 1\nbogus 1\n\n",
		"",
	};
	struct fix f;

	if (!fix_open(&f))
		return;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct spool_msg m;
		char id[SPOOL_ID_MAX], name[SPOOL_ID_MAX + 4], err[256] = "";
		char *path;

		T_CTX("state file \"%s\"", bad[i]);
		queue_simple(&f, id, sizeof(id));
		snprintf(name, sizeof(name), "%s.st", id);
		path = qpath(&f, "q", name);
		T_CHECK(t_write_file(path, bad[i], 0600) == 0);
		T_INTEQ(spool_read(&f.s, id, &m, err, sizeof(err)), -1);
		T_CONTAINS(err, "corrupt state file");
		T_INTEQ(spool_lock(&f.s, id, &m, err, sizeof(err)), SPOOL_BAD);
		free(path);
	}
	fix_close(&f);
}

/* age - set path's mtime (and atime) seconds into the past */
static void age(const char *path, time_t seconds)
{
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - seconds;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	T_CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

/* spool_clean: a stale unlocked tmp file goes; a fresh one, one locked
 * by another process, and a state file with its message stay; an orphan
 * q/X.st goes */
static void spool_clean_leftovers(void)
{
	static const char *const rcpts[] = { "a@x", NULL };
	struct fix f;
	struct spool_msg m;
	char *stale, *fresh, *locked, *orphan, *kept_st;
	char stname[SPOOL_ID_MAX + 4], c;
	int ready[2], go[2], status;
	pid_t pid;

	if (!fix_open(&f))
		return;
	stale = qpath(&f, "tmp", "00000001000000A");
	fresh = qpath(&f, "tmp", "00000001000000B");
	locked = qpath(&f, "tmp", "00000001000000C");
	orphan = qpath(&f, "q", "00000001000000D.st");
	t_write_file(stale, "half a message", 0600);
	t_write_file(fresh, "half a message", 0600);
	t_write_file(locked, "half a message", 0600);
	t_write_file(orphan, "OUTBOX-STATE 1\nattempts 1\nlast 1\n\n", 0600);
	age(stale, 60);
	age(locked, 60);
	age(orphan, 60);

	queue(&f, "alice@example.com", rcpts, "x\r\n", 3, &m);
	m.attempts = 1;
	T_INTEQ(spool_save_state(&f.s, &m), 0);
	snprintf(stname, sizeof(stname), "%s.st", m.id);
	kept_st = qpath(&f, "q", stname);
	spool_msg_free(&m);

	/* another process holds the lock on "locked" */
	if (!T_CHECK(pipe(ready) == 0 && pipe(go) == 0))
		return;
	fflush(NULL);
	if ((pid = fork()) == 0) {
		int fd = open(locked, O_RDONLY);
		bool ok = fd >= 0 && flock(fd, LOCK_EX) == 0 &&
		    write(ready[1], "L", 1) == 1 && read(go[0], &c, 1) >= 0;

		/* the child's copies, released so valgrind sees no leak */
		free(stale);
		free(fresh);
		free(locked);
		free(orphan);
		free(kept_st);
		_exit(ok ? 0 : 1);
	}
	if (!T_CHECK(pid > 0) || !T_INTEQ(read(ready[0], &c, 1), 1))
		return;

	spool_clean(&f.s);
	T_CHECK(!t_exists(stale));
	T_CHECK(t_exists(fresh));
	T_CHECK(t_exists(locked));
	T_CHECK(!t_exists(orphan));
	T_CHECK(t_exists(kept_st));

	T_INTEQ(write(go[1], "G", 1), 1);
	waitpid(pid, &status, 0);
	T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* once its holder is gone, the stale locked file goes too */
	spool_clean(&f.s);
	T_CHECK(!t_exists(locked));
	T_CHECK(t_exists(fresh));

	free(stale);
	free(fresh);
	free(locked);
	free(orphan);
	free(kept_st);
	fix_close(&f);
}

/* spool_abort removes the uncommitted tmp file and commits nothing */
static void spool_abort_removes_tmp(void)
{
	static const char *const rcpts[] = { "a@x", NULL };
	struct fix f;
	struct spool_writer *w = malloc(sizeof(*w));
	struct strlist l = STRLIST_INIT;
	char *tmp, *q;

	if (!fix_open(&f))
		return;
	tmp = t_path(f.dir, "tmp");
	q = t_path(f.dir, "q");
	strlist_add(&l, rcpts[0]);
	spool_create(&f.s, w);
	put_envelope(w, "alice@example.com", &l);
	spool_write(w, "x\r\n", 3);
	T_INTEQ(count_entries(tmp), 1);
	spool_abort(w);
	T_INTEQ(count_entries(tmp), 0);
	T_INTEQ(count_entries(q), 0);
	strlist_free(&l);
	free(w);
	free(tmp);
	free(q);
	fix_close(&f);
}

/* die_writing - t_fork body: start a message, then die */
static void die_writing(void *arg)
{
	struct fix *f = arg;
	struct spool_writer *w = malloc(sizeof(*w));
	struct strlist l = STRLIST_INIT;

	strlist_add(&l, "a@x");
	spool_create(&f->s, w);
	put_envelope(w, "alice@example.com", &l);
	spool_write(w, "x\r\n", 3);
	log_die(EX_IOERR, "simulated failure while writing");
}

/* log_die while a message is being written removes its tmp file */
static void spool_die_while_writing_cleans_up(void)
{
	struct fix f;
	char err[512];
	char *tmp, *q;

	if (!fix_open(&f))
		return;
	tmp = t_path(f.dir, "tmp");
	q = t_path(f.dir, "q");
	T_INTEQ(t_fork(die_writing, &f, err, sizeof(err)), EX_IOERR);
	T_CONTAINS(err, "simulated failure");
	T_INTEQ(count_entries(tmp), 0);
	T_INTEQ(count_entries(q), 0);
	free(tmp);
	free(q);
	fix_close(&f);
}

struct open_arg {
	const char *dir;
	enum spool_open_mode mode;
};

/* open_child - t_fork body: spool_open, exit 0 or 1 by its result */
static void open_child(void *arg)
{
	struct open_arg *a = arg;
	struct conf conf;
	struct spool s;

	memset(&conf, 0, sizeof(conf));
	conf.queue.dir = (char *)a->dir;
	_exit(spool_open(&conf, &s, a->mode) == 0 ? 0 : 1);
}

/* a spool directory that is a symlink is refused (exit 73) */
static void spool_open_refuses_symlink(void)
{
	char *base = t_tmpdir();
	char *real = t_path(base, "real");
	char *link = t_path(base, "spool");
	struct open_arg a = { link, SPOOL_CREATE };
	char err[1024];

	T_CHECK(mkdir(real, 0700) == 0);
	T_CHECK(symlink(real, link) == 0);
	T_INTEQ(t_fork(open_child, &a, err, sizeof(err)), EX_CANTCREAT);
	T_CONTAINS(err, "symlink");
	a.mode = SPOOL_EXISTING;
	T_INTEQ(t_fork(open_child, &a, err, sizeof(err)), EX_CANTCREAT);
	T_INTEQ(count_entries(real), 0);
	free(real);
	free(link);
	free(base);
}

/* a spool directory (or q/) of mode 0755 is refused (exit 73) */
static void spool_open_refuses_mode_0755(void)
{
	char *base = t_tmpdir();
	char *dir = t_path(base, "spool");
	char *q = t_path(dir, "q");
	struct open_arg a = { dir, SPOOL_CREATE };
	char err[1024];

	T_CHECK(mkdir(dir, 0700) == 0 && chmod(dir, 0755) == 0);
	T_INTEQ(t_fork(open_child, &a, err, sizeof(err)), EX_CANTCREAT);
	T_CONTAINS(err, "mode 0700");
	a.mode = SPOOL_EXISTING;
	T_INTEQ(t_fork(open_child, &a, err, sizeof(err)), EX_CANTCREAT);

	T_CHECK(chmod(dir, 0700) == 0);
	T_CHECK(mkdir(q, 0700) == 0 && chmod(q, 0755) == 0);
	a.mode = SPOOL_CREATE;
	T_INTEQ(t_fork(open_child, &a, err, sizeof(err)), EX_CANTCREAT);
	T_CONTAINS(err, "mode 0700");
	free(q);
	free(dir);
	free(base);
}

/* spool_id_valid: 8 to 31 upper-case hex digits, nothing else */
static void spool_id_valid_table(void)
{
	static const struct {
		const char *id;
		bool want;
	} c[] = {
		{ "01234567", true },
		{ "692A0E8B3D0F1A7", true },
		{ "0123456789ABCDEF0123456789ABCDE", true },	/* 31 */
		{ "0123456789ABCDEF0123456789ABCDEF", false },	/* 32 */
		{ "0123456", false },
		{ "", false },
		{ "0123456789abcdef", false },
		{ "0123456789ABCDEF.st", false },
		{ "../../etc/passwd", false },
		{ "0123456789ABCDEF/", false },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		T_CTX("id \"%s\"", c[i].id);
		T_INTEQ(spool_id_valid(c[i].id), c[i].want);
	}
}

const struct t_test t_spool_tests[] = {
	T_ENTRY(spool_open_creates_private_dirs),
	T_ENTRY(spool_open_existing_missing),
	T_ENTRY(spool_open_existing_present),
	T_ENTRY(spool_commit_round_trip),
	T_ENTRY(spool_large_message_round_trip),
	T_ENTRY(spool_null_sender),
	T_ENTRY(spool_envelope_options),
	T_ENTRY(spool_commit_keeps_lock),
	T_ENTRY(spool_lock_same_process_busy),
	T_ENTRY(spool_lock_free_message),
	T_ENTRY(spool_lock_missing),
	T_ENTRY(spool_save_state_round_trip),
	T_ENTRY(spool_save_state_replaces),
	T_ENTRY(spool_remove_deletes_both),
	T_ENTRY(spool_remove_syncs_in_batches),
	T_ENTRY(spool_list_sorted_ignores_junk),
	T_ENTRY(spool_ids_increase),
	T_ENTRY(spool_read_corrupt_queue_file),
	T_ENTRY(spool_read_corrupt_state_file),
	T_ENTRY(spool_clean_leftovers),
	T_ENTRY(spool_abort_removes_tmp),
	T_ENTRY(spool_die_while_writing_cleans_up),
	T_ENTRY(spool_open_refuses_symlink),
	T_ENTRY(spool_open_refuses_mode_0755),
	T_ENTRY(spool_id_valid_table),
	T_END
};
