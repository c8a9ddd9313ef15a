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
#include "util/utf8.h"

#define MAILQ_INDENT 51		/* where the sender column starts */

/* mailq_recipients - the recipients not yet delivered, with reasons */
static void mailq_recipients(const struct spool_msg *m)
{
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct spool_rcpt *r = &m->rcpts[i];

		if (r->state == RCPT_DONE || r->state == RCPT_BOUNCED)
			continue;
		if (r->state == RCPT_FAILED)
			printf("%*s(failed: %s)\n", MAILQ_INDENT, "",
			       r->reply ? r->reply : "refused");
		else if (r->reply)
			printf("%*s(%s)\n", MAILQ_INDENT, "", r->reply);
		printf("%*s%s\n", MAILQ_INDENT, "", r->addr);
	}
}

/* mailq_text - one message block */
static void mailq_text(const struct spool_msg *m)
{
	char when[64], id[SPOOL_ID_MAX + 2];
	struct tm tm;

	if (localtime_r(&m->arrival, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));	/* beyond the calendar */
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
	snprintf(id, sizeof(id), "%s%s", m->id, m->held ? "!" : "");
	printf("%-20s %8lld %-20s %s\n", id, (long long)m->data_len, when,
	       *m->sender ? m->sender : "MAILER-DAEMON");
	if (m->error && spool_pending(m))
		printf("%*s(%s)\n", MAILQ_INDENT, "", m->error);
	mailq_recipients(m);
	putchar('\n');
}

/* json_str - a JSON string, or null; JSON is UTF-8, a relay's reply
 * need not be: a byte that is not UTF-8 becomes U+FFFD */
static void json_str(const char *s)
{
	size_t n;

	if (s == NULL) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			printf("\\%c", *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p);
		} else if (*p < 0x80) {
			putchar(*p);
		} else if ((n = utf8_len(p, 4)) == 0) {	/* stops at NUL */
			fputs("\\ufffd", stdout);
		} else {
			fwrite(p, 1, n, stdout);
			p += n - 1;
		}
	}
	putchar('"');
}

/* mailq_json - one message object */
static void mailq_json(const struct spool_msg *m, bool first)
{
	static const char *const names[] = { "pending", "sent", "failed",
					     "bounced" };
	static const char states[] = { RCPT_PENDING, RCPT_DONE, RCPT_FAILED,
				       RCPT_BOUNCED };

	printf("%s\n{\"id\":\"%s\",\"size\":%lld,\"arrival\":%lld,\"sender\":",
	       first ? "" : ",", m->id, (long long)m->data_len,
	       (long long)m->arrival);
	json_str(m->sender);
	printf(",\"held\":%s,\"attempts\":%u,\"last_attempt\":%lld,"
	       "\"next_attempt\":%lld,\"error\":", m->held ? "true" : "false",
	       m->attempts, (long long)m->last_try, (long long)m->next_try);
	json_str(m->error);
	fputs(",\"recipients\":[", stdout);
	for (size_t i = 0; i < m->nrcpts; i++) {
		const char *state = "pending";

		for (size_t k = 0; k < sizeof(states); k++)
			if (m->rcpts[i].state == states[k])
				state = names[k];
		printf("%s{\"address\":", i ? "," : "");
		json_str(m->rcpts[i].addr);
		printf(",\"state\":\"%s\",\"reply\":", state);
		json_str(m->rcpts[i].reply);
		putchar('}');
	}
	fputs("]}", stdout);
}

/* mailq_one - read and print one message; its size, for the total */
static off_t mailq_one(struct spool *s, const char *id, bool json,
		       bool first)
{
	struct spool_msg m;
	char err[512];
	off_t size;

	if (spool_read(s, id, &m, err, sizeof(err)) < 0) {
		if (json) {
			printf("%s\n{\"id\":\"%s\",\"error\":", first ? "" :
			       ",", id);
			json_str(err);
			putchar('}');
		} else {
			printf("%-20s (%s)\n\n", id, err);
		}
		return 0;
	}
	if (json)
		mailq_json(&m, first);
	else
		mailq_text(&m);
	size = m.data_len;
	spool_msg_free(&m);
	return size;
}

/* mailq_list - print the queue; 0 unless the spool cannot be read */
int mailq_list(const struct conf *c, bool json)
{
	struct spool s;
	struct strlist ids = STRLIST_INIT;
	long long total = 0;

	if (spool_open(c, &s, SPOOL_EXISTING) < 0 || spool_list(&s, &ids) < 0
	    || ids.n == 0) {
		puts(json ? "[]" : "Mail queue is empty");
		spool_close(&s);
		strlist_free(&ids);
		return EX_OK;
	}
	if (json)
		putchar('[');
	else
		printf("%-20s %8s %-20s %s\n", "-Queue ID-", "--Size--",
		       "----Arrival Time----", "-Sender/Recipient-------");
	for (size_t i = 0; i < ids.n; i++)
		total += mailq_one(&s, ids.v[i], json, i == 0);
	if (json)
		puts("\n]");
	else
		printf("-- %lld Kbytes in %zu Request%s.\n", (total + 1023) /
		       1024, ids.n, ids.n == 1 ? "" : "s");
	spool_close(&s);
	strlist_free(&ids);
	return EX_OK;
}
