/*
 * NAME
 *	runner - deliver queued messages through the relay
 * DESCRIPTION
 *	See runner.h. After each attempt runner_finish() commits what
 *	happened: the message is removed when no recipient is left, else
 *	its state file is replaced. The log gets one line per recipient
 *	whose fate changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "queue/runner.h"
#include "relay/relay.h"
#include "util/buf.h"
#include "util/crash.h"
#include "util/log.h"

/* set by SIGTERM/SIGINT in the queue runner: stop between messages */
static volatile sig_atomic_t runner_stop;

struct tally {
	unsigned delivered;	/* messages now fully done */
	unsigned deferred;	/* messages with recipients still pending */
	unsigned failed;	/* messages with only failed ones left */
	unsigned busy;		/* held by another process: try again soon */
};

/* runner_count - how m's recipients stand */
static void runner_count(const struct spool_msg *m, size_t *done,
			 size_t *pending, size_t *failed)
{
	*done = *pending = *failed = 0;
	for (size_t i = 0; i < m->nrcpts; i++) {
		char st = m->rcpts[i].state;

		*done += st == RCPT_DONE;
		*pending += st == RCPT_PENDING;
		*failed += st == RCPT_FAILED;
	}
}

/* runner_log - one log line per recipient touched by this attempt */
static void runner_log(const struct spool_msg *m, const char *before)
{
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct spool_rcpt *r = &m->rcpts[i];

		if (r->state == RCPT_DONE && before[i] != RCPT_DONE)
			log_note("%s: to=<%s>, status=sent (%s)", m->id,
				 r->addr, r->reply ? r->reply : "");
		else if (r->state == RCPT_FAILED && before[i] != RCPT_FAILED)
			log_note("%s: to=<%s>, status=failed (%s)", m->id,
				 r->addr, r->reply ? r->reply : "");
		else if (r->state == RCPT_PENDING)
			log_note("%s: to=<%s>, status=deferred (%s)", m->id,
				 r->addr, r->reply ? r->reply :
				 m->error ? m->error : "not yet tried");
	}
}

/* runner_finish - commit the attempt's outcome to the spool */
static void runner_finish(struct spool *s, struct spool_msg *m,
			  const char *before, struct tally *t)
{
	size_t done, pending, failed;

	m->attempts++;
	m->last_try = time(NULL);
	runner_log(m, before);
	runner_count(m, &done, &pending, &failed);
	if (pending == 0 && failed == 0) {
		spool_remove(s, m);
		t->delivered++;
		return;
	}
	spool_save_state(s, m);
	if (pending)
		t->deferred++;
	else
		t->failed++;
}

/* runner_snapshot - the recipients' states before an attempt */
static char *runner_snapshot(const struct spool_msg *m)
{
	char *st = malloc(m->nrcpts + 1);

	if (st == NULL)
		log_die(EX_OSERR, "out of memory");
	for (size_t i = 0; i < m->nrcpts; i++)
		st[i] = m->rcpts[i].state;
	st[m->nrcpts] = '\0';
	return st;
}

/* runner_send - one message over r, reopening once if r went stale */
static int runner_send(const struct conf *c, struct relay *r, bool *open,
		       struct spool_msg *m, char *err, size_t errlen)
{
	if (!*open) {
		if (relay_open(r, c, err, errlen) < 0)
			return -1;
		*open = true;
	}
	if (relay_send(r, m) == RELAY_STALE) {
		log_verbose("the relay closed the connection; reconnecting");
		relay_close(r);
		*open = false;
		if (relay_open(r, c, err, errlen) < 0)
			return -1;
		*open = true;
		relay_send(r, m);
	}
	crash_point("after-accept");
	if (r->broken) {
		relay_close(r);
		*open = false;
	}
	return 0;
}

/* runner_no_relay - queued without a relay: say so once per spool */
static void runner_no_relay(const struct conf *c, struct spool *s,
			    const struct spool_msg *m)
{
	int fd = openat(s->dirfd, "told-no-relay", O_WRONLY | O_CREAT |
			O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		log_warn("no relay configured (set [relay] host in %s); %s "
			 "is queued in %s and will be sent by sendmail -q",
			 c->path ? c->path : "/etc/outbox.conf", m->id,
			 s->path);
	} else {
		log_note("%s: queued; no relay configured", m->id);
	}
}

/* runner_report - tell the caller which recipients were refused */
static void runner_report(const struct spool_msg *m)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == RCPT_FAILED)
			log_warn("%s: <%s> refused by the relay: %s", m->id,
				 m->rcpts[i].addr, m->rcpts[i].reply ?
				 m->rcpts[i].reply : "no reason given");
}

/* runner_deliver_new - the immediate attempt after a submission */
int runner_deliver_new(const struct conf *c, struct spool *s,
		       struct spool_msg *m)
{
	struct relay r;
	struct tally t = { 0 };
	bool open = false;
	char err[1024] = "", *before;
	size_t done, pending, failed;

	if (c->relay.host == NULL) {
		runner_no_relay(c, s, m);
		return EX_OK;
	}
	signal(SIGPIPE, SIG_IGN);
	before = runner_snapshot(m);
	if (runner_send(c, &r, &open, m, err, sizeof(err)) < 0) {
		free(m->error);
		m->error = xstrdup(err);
	}
	if (open)
		relay_close(&r);
	runner_count(m, &done, &pending, &failed);
	runner_finish(s, m, before, &t);
	free(before);
	if (failed)
		runner_report(m);
	if (pending)
		log_tty("%s: queued, not delivered yet: %s", m->id,
			m->error ? m->error : "deferred by the relay");
	return failed && !done && !pending ? EX_UNAVAILABLE : EX_OK;
}

/* runner_one - lock, deliver and settle one queued message */
static void runner_one(const struct conf *c, struct spool *s, const char *id,
		       struct relay *r, bool *open, char *conn_err,
		       size_t errlen, struct tally *t)
{
	struct spool_msg m;
	char err[512], *before;

	switch (spool_lock(s, id, &m, err, sizeof(err))) {
	case SPOOL_LOCKED:
		break;
	case SPOOL_BAD:
		log_warn("%s", err);
		return;
	case SPOOL_BUSY:
		t->busy++;
		return;
	case SPOOL_GONE:
		return;
	}
	if (spool_pending(&m) == 0) {
		spool_msg_free(&m);
		return;
	}
	before = runner_snapshot(&m);
	if (c->relay.host == NULL)
		snprintf(conn_err, errlen, "no relay configured");
	if (conn_err[0] == '\0' &&
	    runner_send(c, r, open, &m, conn_err, errlen) < 0)
		log_note("cannot reach the relay: %s", conn_err);
	if (conn_err[0]) {
		free(m.error);
		m.error = xstrdup(conn_err);
	}
	runner_finish(s, &m, before, t);
	free(before);
	spool_msg_free(&m);
}

/* runner_pass - one pass over the queue, counted in t */
static void runner_pass(const struct conf *c, struct spool *s,
			const char *only_id, struct tally *t)
{
	struct strlist ids = STRLIST_INIT;
	struct relay r;
	bool open = false;
	char conn_err[1024] = "";

	signal(SIGPIPE, SIG_IGN);
	spool_clean(s);
	if (only_id)
		strlist_add(&ids, only_id);
	else if (spool_list(s, &ids) < 0)
		log_die(EX_IOERR, "cannot read the queue in %s: %m", s->path);
	for (size_t i = 0; i < ids.n && !runner_stop; i++)
		runner_one(c, s, ids.v[i], &r, &open, conn_err,
			   sizeof(conn_err), t);
	if (open)
		relay_close(&r);
	strlist_free(&ids);
}

/* runner_flush - try every queued message (or only_id) now */
int runner_flush(const struct conf *c, struct spool *s, const char *only_id)
{
	struct tally t = { 0 };

	runner_pass(c, s, only_id, &t);
	if (isatty(STDOUT_FILENO))
		printf("%u delivered, %u deferred, %u failed\n", t.delivered,
		       t.deferred, t.failed);
	return t.deferred ? EX_TEMPFAIL : EX_OK;
}

/* runner_signal - SIGTERM, SIGINT: finish the transaction, then stop */
static void runner_signal(int sig)
{
	(void)sig;
	runner_stop = 1;
}

/* runner_watch - inotify on q/: a new message wakes the runner */
static int runner_watch(struct spool *s)
{
	char path[PATH_MAX];
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/q", s->path);
	if (inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* runner_sleep - until ms pass, a message arrives or a signal says stop */
static void runner_sleep(int watch, long ms)
{
	struct pollfd p = { .fd = watch, .events = POLLIN };
	char events[4096];
	struct timespec now, end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (ms % 1000) * 1000000L;
	for (;;) {
		long left;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (end.tv_sec - now.tv_sec) * 1000 +
		    (end.tv_nsec - now.tv_nsec) / 1000000L;
		if (runner_stop || left <= 0)
			return;
		n = poll(&p, watch >= 0 ? 1 : 0, (int)(left > INT_MAX ?
						       INT_MAX : left));
		if (n > 0) {
			while (read(watch, events, sizeof(events)) > 0)
				;
			return;
		}
	}
}

/* runner_loop - sendmail -q<interval>, in the foreground */
int runner_loop(const struct conf *c, struct spool *s, long interval)
{
	struct sigaction sa = { .sa_handler = runner_signal };
	int watch = runner_watch(s);

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	log_set_foreground(true);
	log_note("queue runner started: every %lds, and when mail arrives%s",
		 interval, watch < 0 ? " (inotify unavailable)" : "");
	while (!runner_stop) {
		struct tally t = { 0 };

		runner_pass(c, s, NULL, &t);
		/* a message still held by its submitter: look again soon */
		runner_sleep(watch, t.busy ? 100 : interval * 1000);
	}
	log_note("queue runner stopped");
	if (watch >= 0)
		close(watch);
	return EX_OK;
}
