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
#include <signal.h>
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

struct tally {
	unsigned delivered;	/* messages now fully done */
	unsigned deferred;	/* messages with recipients still pending */
	unsigned failed;	/* messages with only failed ones left */
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
	default:
		return;		/* busy elsewhere, or already gone */
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

/* runner_flush - try every queued message (or only_id) now */
int runner_flush(const struct conf *c, struct spool *s, const char *only_id)
{
	struct strlist ids = STRLIST_INIT;
	struct tally t = { 0 };
	struct relay r;
	bool open = false;
	char conn_err[1024] = "";

	signal(SIGPIPE, SIG_IGN);
	spool_clean(s);
	if (only_id)
		strlist_add(&ids, only_id);
	else if (spool_list(s, &ids) < 0)
		log_die(EX_IOERR, "cannot read the queue in %s: %m", s->path);
	for (size_t i = 0; i < ids.n; i++)
		runner_one(c, s, ids.v[i], &r, &open, conn_err,
			   sizeof(conn_err), &t);
	if (open)
		relay_close(&r);
	strlist_free(&ids);
	if (isatty(STDOUT_FILENO))
		printf("%u delivered, %u deferred, %u failed\n", t.delivered,
		       t.deferred, t.failed);
	return t.deferred ? EX_TEMPFAIL : EX_OK;
}
