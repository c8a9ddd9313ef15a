/*
 * NAME
 *	mailq - list the queue (sendmail -bp, mailq)
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "queue/mailq.h"
#include "queue/spool.h"
#include "util/log.h"

#define MAILQ_INDENT "%51s"
#define MAILQ_PAD ""

/* mailq_recipients - the recipients not yet delivered, with reasons */
static void mailq_recipients(const struct spool_msg *m)
{
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct spool_rcpt *r = &m->rcpts[i];

		if (r->state == RCPT_DONE)
			continue;
		if (r->state == RCPT_FAILED)
			printf(MAILQ_INDENT "(failed: %s)\n", MAILQ_PAD,
			       r->reply ? r->reply : "refused");
		else if (r->reply)
			printf(MAILQ_INDENT "(%s)\n", MAILQ_PAD, r->reply);
		printf(MAILQ_INDENT "%s\n", MAILQ_PAD, r->addr);
	}
}

/* mailq_one - one message block */
static off_t mailq_one(struct spool *s, const char *id)
{
	struct spool_msg m;
	char err[512], when[64];
	struct tm tm;
	off_t size;

	if (spool_read(s, id, &m, err, sizeof(err)) < 0) {
		printf("%-20s (%s)\n\n", id, err);
		return 0;
	}
	localtime_r(&m.arrival, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
	printf("%-20s %8lld %-20s %s\n", m.id, (long long)m.data_len, when,
	       *m.sender ? m.sender : "MAILER-DAEMON");
	if (m.error && spool_pending(&m))
		printf(MAILQ_INDENT "(%s)\n", MAILQ_PAD, m.error);
	mailq_recipients(&m);
	putchar('\n');
	size = m.data_len;
	spool_msg_free(&m);
	return size;
}

/* mailq_list - print the queue; 0 unless the spool cannot be read */
int mailq_list(const struct conf *c)
{
	struct spool s;
	struct strlist ids = STRLIST_INIT;
	long long total = 0;

	if (spool_open(c, &s, SPOOL_EXISTING) < 0 || spool_list(&s, &ids) < 0
	    || ids.n == 0) {
		printf("Mail queue is empty\n");
		spool_close(&s);
		strlist_free(&ids);
		return EX_OK;
	}
	printf("%-20s %8s %-20s %s\n", "-Queue ID-", "--Size--",
	       "----Arrival Time----", "-Sender/Recipient-------");
	for (size_t i = 0; i < ids.n; i++)
		total += mailq_one(&s, ids.v[i]);
	printf("-- %lld Kbytes in %zu Request%s.\n", (total + 1023) / 1024,
	       ids.n, ids.n == 1 ? "" : "s");
	spool_close(&s);
	strlist_free(&ids);
	return EX_OK;
}
