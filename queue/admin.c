/*
 * NAME
 *	admin - hold, release and delete one queued message
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "queue/admin.h"
#include "queue/spool.h"
#include "util/log.h"

#define ADMIN_WAIT 10	/* seconds to wait for a delivery in progress */

/* admin_nap - a tenth of a second, ADMIN_WAIT * 10 of which are the wait */
static void admin_nap(void)
{
	struct timespec ts = { 0, 100000000 };

	nanosleep(&ts, NULL);
}

/* admin_lock - the message locked and read, waiting out a delivery */
static int admin_lock(struct spool *s, const char *id, struct spool_msg *m)
{
	char err[512];

	for (int i = 0; i < ADMIN_WAIT * 10; i++) {
		switch (spool_lock(s, id, m, err, sizeof(err))) {
		case SPOOL_LOCKED:
			return EX_OK;
		case SPOOL_GONE:
			log_warn("%s: no such message in %s", id, s->path);
			return EX_NOINPUT;
		case SPOOL_BAD:
			log_warn("%s", err);
			return EX_DATAERR;
		case SPOOL_BUSY:
			admin_nap();
			break;
		}
	}
	log_warn("%s: still being delivered; try again", id);
	return EX_TEMPFAIL;
}

/* admin_delete - remove the message, readable or not */
static int admin_delete(struct spool *s, const char *id)
{
	char name[SPOOL_ID_MAX + 4];
	int fd = openat(s->qfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int i = 0;

	if (fd < 0) {
		log_warn("%s: no such message in %s", id, s->path);
		return EX_NOINPUT;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0 && i++ < ADMIN_WAIT * 10)
		admin_nap();
	if (i > ADMIN_WAIT * 10) {
		close(fd);
		log_warn("%s: still being delivered; try again", id);
		return EX_TEMPFAIL;
	}
	snprintf(name, sizeof(name), "%s.st", id);
	if (unlinkat(s->qfd, id, 0) < 0 && errno != ENOENT) {
		close(fd);
		log_warn("%s: cannot delete: %m", id);
		return EX_IOERR;
	}
	unlinkat(s->qfd, name, 0);
	fsync(s->qfd);
	close(fd);
	log_note("%s: deleted by the user", id);
	return EX_OK;
}

/* admin_hold - set or clear the hold flag */
static int admin_hold(struct spool *s, const char *id, bool hold)
{
	struct spool_msg m;
	int ex = admin_lock(s, id, &m);

	if (ex != EX_OK)
		return ex;
	m.held = hold;
	if (!hold)
		m.next_try = 0;
	if (spool_save_state(s, &m) < 0)
		ex = EX_IOERR;
	else
		log_note("%s: %s by the user", id, hold ? "held" : "released");
	spool_msg_free(&m);
	return ex;
}

/* admin_apply - one command on one message */
int admin_apply(const struct conf *c, enum admin_op op, const char *id)
{
	struct spool s;
	int ex;

	if (!spool_id_valid(id)) {
		log_warn("%s: not a queue id", id);
		return EX_USAGE;
	}
	if (spool_open(c, &s, SPOOL_EXISTING) < 0) {
		spool_close(&s);
		log_warn("%s: no such message (the queue is empty)", id);
		return EX_NOINPUT;
	}
	ex = op == ADMIN_DELETE ? admin_delete(&s, id) :
	    admin_hold(&s, id, op == ADMIN_HOLD);
	spool_close(&s);
	return ex;
}
