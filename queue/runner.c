/*
 * NAME
 *	runner - deliver queued messages through the relay
 * DESCRIPTION
 *	See runner.h. One attempt at one message goes: lock it, skip it if
 *	held or (for the runner) not yet due, expire it if it is too old,
 *	send it, then runner_settle() commits what happened: failed
 *	recipients are bounced, the message is removed when nobody is left
 *	to deliver or report to, else its state file is replaced with the
 *	next retry time (exponential backoff with jitter).
 *
 *	Failures before MAIL (connection, TLS, AUTH, configuration) mark
 *	the message conn_fail: such a message never expires and is never
 *	bounced, because the relay never judged it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <stdatomic.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "queue/bounce.h"
#include "queue/runner.h"
#include "relay/relay.h"
#include "util/buf.h"
#include "util/crash.h"
#include "util/log.h"
#include "util/sys.h"

#define BACKGROUND_MAX_SECONDS	120	/* a background flush stops then */

/* set by SIGTERM/SIGINT in the queue runner: stop between messages */
static volatile sig_atomic_t runner_stop;

struct tally {
	unsigned delivered;	/* messages now fully done */
	unsigned deferred;	/* messages with recipients still pending */
	unsigned failed;	/* messages with only failed ones left */
	unsigned busy;		/* held by another process: try again soon */
};

/* one configured relay as a pass sees it */
struct link {
	const struct conf_relay *rc;
	struct relay relay;
	bool open;		/* connected */
	bool down;		/* could not be had this pass: err says why */
	bool reauth;		/* OAuth2 needs the user: never retried */
	char err[1024];
	int pace_fd;		/* max_rate: the shared pacing file, or -1 */
};

/* what runner_send() did with a message */
enum runner_sent { RUNNER_SENT, RUNNER_DOWN, RUNNER_LEFT };

/* one pass over the queue */
struct pass {
	const struct conf *conf;
	struct spool *spool;
	struct link *links;	/* one per configured relay, in order */
	size_t nlinks;
	long worker;		/* a parallel flush's worker number */
	unsigned char *left;	/* a worker's: set to leave m to the parent */
	char conn_err[1024];	/* why the last message found no relay */
	bool due_only;		/* honour the backoff (runner, background) */
	bool retry_failed;	/* -qI: failed recipients get another try */
	time_t deadline;	/* 0, or stop starting messages then */
	struct strlist ids;	/* work list; queued bounces are appended */
	struct tally t;
};

/* runner_count - how m's recipients stand */
static void runner_count(const struct spool_msg *m, size_t *done,
			 size_t *pending, size_t *failed)
{
	*done = *pending = *failed = 0;
	for (size_t i = 0; i < m->nrcpts; i++) {
		char st = m->rcpts[i].state;

		*done += st == RCPT_DONE || st == RCPT_BOUNCED;
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
				 r->addr, m->conn_fail && m->error ? m->error :
				 r->reply ? r->reply : m->error ? m->error :
				 "not yet tried");
	}
}

/* runner_backoff - seconds until the next try: doubling, capped, +-20% */
static long runner_backoff(const struct conf *c, unsigned attempts)
{
	long delay = c->queue.retry_min;
	unsigned short jitter = 0;

	for (unsigned i = 1; i < attempts && delay < c->queue.retry_max; i++)
		delay *= 2;
	if (delay > c->queue.retry_max)
		delay = c->queue.retry_max;
	if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) < 0)
		jitter = (unsigned short)getpid();
	return delay * (80 + jitter % 41) / 100;
}

/* runner_bounce - report the failed recipients to the sender */
static void runner_bounce(struct pass *p, struct spool_msg *m)
{
	char id[SPOOL_ID_MAX];
	size_t done, pending, failed;

	runner_count(m, &done, &pending, &failed);
	if (failed == 0 || m->notified || *m->sender == '\0')
		return;
	if (bounce_queue(p->conf, p->spool, m, id, sizeof(id)) < 0)
		return;
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == RCPT_FAILED)
			m->rcpts[i].state = RCPT_BOUNCED;
	if (*id)
		strlist_add(&p->ids, id);
}

/* runner_settle - commit the attempt's outcome to the spool */
static void runner_settle(struct pass *p, struct spool_msg *m,
			  const char *before)
{
	size_t done, pending, failed;
	time_t now = sys_now();

	m->attempts++;
	m->last_try = now;
	runner_log(m, before);
	runner_bounce(p, m);
	runner_count(m, &done, &pending, &failed);
	if (pending == 0 && failed == 0) {
		spool_remove(p->spool, m);
		p->t.delivered++;
		return;
	}
	m->next_try = pending ? now + runner_backoff(p->conf, m->attempts) :
	    0;
	spool_save_state(p->spool, m);
	if (pending)
		p->t.deferred++;
	else
		p->t.failed++;
}

/* runner_snapshot - the recipients' states before an attempt */
static char *runner_snapshot(const struct spool_msg *m)
{
	char *st = xmalloc(m->nrcpts + 1);

	for (size_t i = 0; i < m->nrcpts; i++)
		st[i] = m->rcpts[i].state;
	st[m->nrcpts] = '\0';
	return st;
}

/* slots a relay's pacing may run ahead: more than all senders waiting */
#define RUNNER_PACE_AHEAD	(2 * CONF_COUNT_MAX + 16)

/* runner_pace - max_rate: wait for this relay's next sending slot. The
 * slot lives in a small file in the spool, under flock, so that every
 * outbox process of the user (flush workers, submissions) shares it */
static void runner_pace(struct pass *p, struct link *l)
{
	long long interval = (long long)(1e9 / l->rc->max_rate), next = 0;
	struct timespec now;
	long long t, start;
	char name[300];

	if (l->rc->max_rate <= 0)
		return;
	if (l->pace_fd < 0) {
		snprintf(name, sizeof(name), "pace-%s", l->rc->name);
		l->pace_fd = openat(p->spool->dirfd, name, O_RDWR | O_CREAT |
				    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (l->pace_fd < 0)
			return;	/* pacing is best effort, never a failure */
	}
	if (flock(l->pace_fd, LOCK_EX) < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	t = now.tv_sec * 1000000000LL + now.tv_nsec;
	if (pread(l->pace_fd, &next, sizeof(next), 0) != sizeof(next) ||
	    next > t + RUNNER_PACE_AHEAD * interval)
		next = 0;	/* absent, or from a clock that jumped */
	start = next > t ? next : t;
	next = start + interval;
	if (pwrite(l->pace_fd, &next, sizeof(next), 0) != sizeof(next))
		log_verbose("%s: cannot record the pacing slot", l->rc->name);
	flock(l->pace_fd, LOCK_UN);
	if (start > t) {
		struct timespec d = { (start - t) / 1000000000LL,
			(start - t) % 1000000000LL };

		while (nanosleep(&d, &d) < 0 && errno == EINTR &&
		       !runner_stop)
			;
	}
}

/* runner_link_open - connect l, or remember for this pass why not */
static int runner_link_open(struct pass *p, struct link *l)
{
	if (l->open)
		return 0;
	if (l->down)
		return -1;
	if (relay_open(&l->relay, l->rc, p->spool->dirfd, l->err,
		       sizeof(l->err)) == 0) {
		l->open = true;
		return 0;
	}
	l->down = true;
	l->reauth = l->relay.reauth;
	if (l->reauth)
		log_warn("%s", l->err);
	return -1;
}

/* runner_link_close - QUIT and forget the session */
static void runner_link_close(struct link *l)
{
	if (l->open)
		relay_close(&l->relay);
	l->open = false;
}

/* runner_via - m over link l, reopening once if a reused connection
 * went stale; -1: the relay could not be had, nothing was sent */
static int runner_via(struct pass *p, struct link *l, struct spool_msg *m)
{
	if (runner_link_open(p, l) < 0)
		return -1;
	runner_pace(p, l);
	if (relay_send(&l->relay, m) == RELAY_STALE) {
		log_verbose("the relay closed the connection; reconnecting");
		runner_link_close(l);
		if (runner_link_open(p, l) < 0)
			return -1;
		relay_send(&l->relay, m);
	}
	crash_point("after-accept");
	if (l->relay.broken)
		runner_link_close(l);
	return 0;
}

/* runner_send - m through the first relay that takes its sender and
 * can be reached: RUNNER_SENT, or RUNNER_DOWN with p->conn_err set, or
 * RUNNER_LEFT when a worker may not use the relay m now goes to (its
 * number is not below that relay's connections): the parent sends it */
static enum runner_sent runner_send(struct pass *p, struct spool_msg *m)
{
	const char *first = NULL;
	size_t tried = 0;

	for (size_t i = 0; i < p->nlinks; i++) {
		struct link *l = &p->links[i];

		if (!conf_relay_serves(l->rc, m->sender))
			continue;
		if (p->left && !l->down && p->worker >= l->rc->connections)
			return RUNNER_LEFT;
		tried++;
		if (runner_via(p, l, m) == 0)
			return RUNNER_SENT;
		if (first == NULL)
			first = l->err;
		log_verbose("%s: [%s] unavailable: %s", m->id, l->rc->name,
			    l->err);
	}
	if (tried == 0)
		snprintf(p->conn_err, sizeof(p->conn_err), "no relay takes "
			 "mail from <%s> (see senders in outbox(8))",
			 m->sender);
	else
		snprintf(p->conn_err, sizeof(p->conn_err), "%.900s%s", first,
			 tried > 1 ? " (and every other relay failed too)" :
			 "");
	return RUNNER_DOWN;
}

/* runner_attempt - send m, or record why no relay could be had; false
 * when m was left to the parent untouched */
static bool runner_attempt(struct pass *p, struct spool_msg *m)
{
	enum runner_sent sent = RUNNER_DOWN;

	if (p->nlinks == 0)
		snprintf(p->conn_err, sizeof(p->conn_err),
			 "no relay configured");
	else
		sent = runner_send(p, m);
	if (sent == RUNNER_LEFT) {
		*p->left = 1;
		return false;
	}
	m->conn_fail = sent == RUNNER_DOWN;
	if (m->conn_fail) {
		free(m->error);
		m->error = xstrdup(p->conn_err);
	}
	return true;
}

/* runner_expire - past max_age: pending recipients fail (not when the
 * relay was never reached: that is a configuration problem to fix) */
static bool runner_expire(struct pass *p, struct spool_msg *m)
{
	long age = (long)(sys_now() - m->arrival);
	struct buf why = BUF_INIT(1024);

	if (m->attempts == 0 || m->conn_fail || age <= p->conf->queue.max_age)
		return false;	/* never tried, or never judged by the relay */
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct spool_rcpt *r = &m->rcpts[i];

		if (r->state != RCPT_PENDING)
			continue;
		buf_reset(&why);
		buf_printf(&why, "554 5.4.7 expired after %ld days in the "
			   "queue; last reply: %s", age / 86400, r->reply ?
			   r->reply : m->error ? m->error : "none");
		free(r->reply);
		r->reply = buf_steal(&why);
		r->state = RCPT_FAILED;
	}
	buf_free(&why);
	return true;
}

/* runner_skip - not this time: held, not due, or nothing to do */
static bool runner_skip(struct pass *p, struct spool_msg *m)
{
	if (p->retry_failed)
		for (size_t i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].state == RCPT_FAILED)
				m->rcpts[i].state = RCPT_PENDING;
	if (m->held)
		return true;
	if (p->due_only && m->next_try > sys_now())
		return true;
	return spool_pending(m) == 0;
}

/* runner_one - lock, deliver and settle one queued message */
static void runner_one(struct pass *p, const char *id)
{
	struct spool_msg m;
	char err[512], *before;

	switch (spool_lock(p->spool, id, &m, err, sizeof(err))) {
	case SPOOL_LOCKED:
		break;
	case SPOOL_BAD:
		log_warn("%s", err);
		return;
	case SPOOL_BUSY:
		p->t.busy++;
		return;
	case SPOOL_GONE:
		return;
	}
	if (runner_skip(p, &m)) {
		spool_msg_free(&m);
		return;
	}
	before = runner_snapshot(&m);
	if (runner_expire(p, &m) || runner_attempt(p, &m))
		runner_settle(p, &m, before);
	free(before);
	spool_msg_free(&m);
}

/* pass_init - a pass over spool s with every configured relay */
static void pass_init(struct pass *p, const struct conf *c, struct spool *s)
{
	memset(p, 0, sizeof(*p));
	p->conf = c;
	p->spool = s;
	p->nlinks = c->nrelays;
	p->links = xcalloc(c->nrelays ? c->nrelays : 1, sizeof(*p->links));
	for (size_t i = 0; i < c->nrelays; i++) {
		p->links[i].rc = &c->relays[i];
		p->links[i].pace_fd = -1;
	}
	signal(SIGPIPE, SIG_IGN);
}

/* pass_end - QUIT every open session and release the pass */
static void pass_end(struct pass *p)
{
	for (size_t i = 0; i < p->nlinks; i++) {
		runner_link_close(&p->links[i]);
		if (p->links[i].pace_fd >= 0)
			close(p->links[i].pace_fd);
	}
	free(p->links);
	p->links = NULL;
	p->nlinks = 0;
	strlist_free(&p->ids);
}

/* runner_list - the work list: only_id, or the whole queue */
static void runner_list(struct pass *p, const char *only_id)
{
	spool_clean(p->spool);
	if (only_id)
		strlist_add(&p->ids, only_id);
	else if (spool_list(p->spool, &p->ids) < 0)
		log_die(EX_IOERR, "cannot read the queue in %s: %m",
			p->spool->path);
}

/* runner_walk - deliver the work list, in order */
static void runner_walk(struct pass *p)
{
	for (size_t i = 0; i < p->ids.n && !runner_stop; i++) {
		if (p->deadline && time(NULL) > p->deadline)
			break;
		runner_one(p, p->ids.v[i]);
		p->retry_failed = false;	/* only the one named */
	}
}

/*
 * A large queue is flushed by several worker processes, each with its
 * own connection to a relay, so that no relay sees more connections
 * at once than its [relay] connections. The workers take messages from
 * one counter in shared memory, so each message is taken once. A
 * worker whose number is not below the connections of a message's
 * relay leaves that message to the parent, which sends what was left
 * and the bounces the workers queued once they are all done.
 */
#define RUNNER_PER_WORKER	16	/* messages that justify a worker */

struct shared {
	atomic_size_t next;		/* next index into the work list */
	atomic_uint delivered, deferred, failed, busy;
	unsigned char left[];		/* per index: left to the parent */
};

/* runner_workers - how many workers the work list deserves */
static unsigned runner_workers(const struct pass *p)
{
	size_t want = (p->ids.n + RUNNER_PER_WORKER - 1) / RUNNER_PER_WORKER;
	long most = 1;

	for (size_t i = 0; i < p->nlinks; i++)
		if (p->links[i].rc->connections > most)
			most = p->links[i].rc->connections;
	return (unsigned)(want < (size_t)most ? want : (size_t)most);
}

/* runner_worker - one worker: take messages until none are left */
static void runner_worker(struct pass *p, struct shared *sh)
{
	size_t n = p->ids.n;	/* bounces it queues are the parent's */
	size_t i;

	while (!runner_stop && (i = atomic_fetch_add(&sh->next, 1)) < n) {
		if (p->deadline && time(NULL) > p->deadline)
			break;
		p->left = &sh->left[i];
		runner_one(p, p->ids.v[i]);
	}
	p->left = NULL;
	atomic_fetch_add(&sh->delivered, p->t.delivered);
	atomic_fetch_add(&sh->deferred, p->t.deferred);
	atomic_fetch_add(&sh->failed, p->t.failed);
	atomic_fetch_add(&sh->busy, p->t.busy);
}

/* runner_fork - start n workers, their pids in pids: 1 in a worker, 0
 * in the parent */
static int runner_fork(struct pass *p, unsigned n, pid_t *pids)
{
	for (unsigned k = 0; k < n; k++) {
		pid_t pid = fork();

		if (pid == 0) {
			p->worker = (long)k;
			return 1;
		}
		if (pid < 0)
			log_warn("cannot start a flush worker: %m");
		pids[k] = pid;
	}
	return 0;
}

/* runner_reap - wait for the workers; a stop request (SIGTERM to the
 * runner) is passed on, so each finishes its transaction and stops */
static void runner_reap(const pid_t *pids, unsigned n)
{
	bool told = false;

	while (wait(NULL) > 0 || errno == EINTR) {
		if (!runner_stop || told)
			continue;
		for (unsigned k = 0; k < n; k++)
			if (pids[k] > 0)
				kill(pids[k], SIGTERM);
		told = true;
	}
}

/* runner_cmp - qsort and bsearch order of queue IDs */
static int runner_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* runner_leftovers - what the workers did not send: left to the
 * parent, not reached, or queued by them (bounces) */
static void runner_leftovers(struct pass *p, const struct shared *sh,
			     struct strlist *out)
{
	struct strlist now = STRLIST_INIT;
	char **seen = xcalloc(p->ids.n + 1, sizeof(*seen));

	for (size_t i = 0; i < p->ids.n; i++) {
		seen[i] = p->ids.v[i];
		if (sh->left[i] || i >= sh->next)
			strlist_add(out, p->ids.v[i]);
	}
	qsort(seen, p->ids.n, sizeof(*seen), runner_cmp);
	if (!runner_stop && spool_list(p->spool, &now) == 0)
		for (size_t i = 0; i < now.n; i++)
			if (!bsearch(&now.v[i], seen, p->ids.n, sizeof(*seen),
				     runner_cmp))
				strlist_add(out, now.v[i]);
	free(seen);
	strlist_free(&now);
}

/* runner_parallel - the work list through n workers, then the rest */
static void runner_parallel(struct pass *p, unsigned n)
{
	size_t size = sizeof(struct shared) + p->ids.n;
	struct shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct strlist rest = STRLIST_INIT;
	pid_t *pids = xcalloc(n, sizeof(*pids));

	if (sh == MAP_FAILED) {
		free(pids);
		runner_walk(p);
		return;
	}
	if (runner_fork(p, n, pids)) {
		free(pids);
		runner_worker(p, sh);
		spool_sync(p->spool);
		pass_end(p);
		_exit(0);
	}
	runner_reap(pids, n);
	free(pids);
	p->t.delivered += sh->delivered;
	p->t.deferred += sh->deferred;
	p->t.failed += sh->failed;
	p->t.busy += sh->busy;
	runner_leftovers(p, sh, &rest);
	munmap(sh, size);
	strlist_free(&p->ids);
	p->ids = rest;
	runner_walk(p);
}

/* runner_pass - one pass over the queue (or over only_id) */
static void runner_pass(struct pass *p, const char *only_id)
{
	unsigned n;

	runner_list(p, only_id);
	n = runner_workers(p);
	if (n > 1)
		runner_parallel(p, n);
	else
		runner_walk(p);
	spool_sync(p->spool);	/* the removals of the pass, durable */
	pass_end(p);
}

/* runner_flush - try every queued message (or only_id) now */
int runner_flush(const struct conf *c, struct spool *s, const char *only_id)
{
	struct pass p;

	pass_init(&p, c, s);
	p.retry_failed = only_id != NULL;
	runner_pass(&p, only_id);
	if (isatty(STDOUT_FILENO))
		printf("%u delivered, %u deferred, %u failed\n",
		       p.t.delivered, p.t.deferred, p.t.failed);
	return p.t.deferred ? EX_TEMPFAIL : EX_OK;
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
static void runner_report(const struct spool_msg *m, const char *before)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state != before[i] &&
		    (m->rcpts[i].state == RCPT_FAILED ||
		     m->rcpts[i].state == RCPT_BOUNCED))
			log_warn("%s: <%s> refused by the relay: %s", m->id,
				 m->rcpts[i].addr, m->rcpts[i].reply ?
				 m->rcpts[i].reply : "no reason given");
}

/* runner_detach - 0 in a detached process (its own session, stdio on
 * /dev/null, no descriptor of the caller's but across exec), 1 in the
 * caller, -1 if fork failed. A caller about to exit needs no grandchild
 * (its child is an orphan at once and init reaps it): it passes twice =
 * false and does not wait; one that goes on living passes true */
static int runner_detach(bool twice)
{
	pid_t pid;
	int null;

	fflush(NULL);
	if ((pid = fork()) != 0) {
		if (pid < 0)
			return -1;
		if (twice)
			waitpid(pid, NULL, 0);
		return 1;
	}
	if (setsid() < 0 || (twice && fork() != 0))
		_exit(0);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd);
	/* nothing of the caller's */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	log_set_stderr(false);
	return 0;
}

/* runner_background - after a delivery, drain what is due without
 * delaying the caller: a detached grandchild with no stdio, bounded in
 * time, one at a time per spool */
static void runner_background(const struct conf *c, struct spool *s)
{
	struct strlist ids = STRLIST_INIT;
	struct pass p;
	int lock;

	if (spool_list(s, &ids) < 0 || ids.n == 0) {
		strlist_free(&ids);
		return;
	}
	strlist_free(&ids);
	if (runner_detach(true) != 0)
		return;
	lock = openat(s->dirfd, "flush.lock", O_RDWR | O_CREAT | O_NOFOLLOW |
		      O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0)
		_exit(0);
	pass_init(&p, c, s);
	p.due_only = true;
	p.deadline = time(NULL) + BACKGROUND_MAX_SECONDS;
	runner_pass(&p, NULL);
	_exit(0);
}

/* runner_deliver_new - the immediate attempt after a submission */
int runner_deliver_new(const struct conf *c, struct spool *s,
		       struct spool_msg *m, bool exit_tells)
{
	struct pass p;
	char *before;
	size_t done, pending, failed;

	if (c->nrelays == 0) {
		runner_no_relay(c, s, m);
		return EX_OK;
	}
	pass_init(&p, c, s);
	before = runner_snapshot(m);
	runner_attempt(&p, m);
	runner_count(m, &done, &pending, &failed);
	/* all refused: the caller hears it now (exit 69), so no bounce */
	m->notified = exit_tells && failed && !done && !pending;
	runner_report(m, before);
	/* record the outcome before QUIT: a kill during QUIT must not send
	 * the message again */
	runner_settle(&p, m, before);
	for (size_t i = 0; i < p.ids.n; i++)
		runner_one(&p, p.ids.v[i]);	/* the bounce, on this link */
	pass_end(&p);
	free(before);
	if (pending)
		log_tty("%s: queued, not delivered yet: %s", m->id,
			m->error ? m->error : "deferred by the relay");
	if (done)
		runner_background(c, s);
	return failed && !done && !pending ? EX_UNAVAILABLE : EX_OK;
}

/* runner_deliver_detached - -odb: the attempt runs in a detached
 * process and the caller returns at once; what the relay refuses is
 * bounced, as in a flush. If no process can be started, the attempt is
 * made now */
int runner_deliver_detached(const struct conf *c, struct spool *s,
			    struct spool_msg *m)
{
	int rc;

	if (c->nrelays == 0)
		return runner_deliver_new(c, s, m, false);
	if ((rc = runner_detach(false)) < 0)
		return runner_deliver_new(c, s, m, true);
	if (rc > 0)
		return EX_OK;
	runner_deliver_new(c, s, m, false);
	_exit(0);
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
		struct pass p;

		pass_init(&p, c, s);
		p.due_only = true;
		runner_pass(&p, NULL);
		/* a message still held by its submitter: look again soon */
		runner_sleep(watch, p.t.busy ? 100 : interval * 1000);
	}
	log_note("queue runner stopped");
	if (watch >= 0)
		close(watch);
	return EX_OK;
}
