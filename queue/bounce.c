/*
 * NAME
 *	bounce - delivery status notifications for failed recipients
 * DESCRIPTION
 *	See bounce.h. The report is written with the spool's own writer, so
 *	it is as durable as any submission before the failed recipients
 *	are marked bounced.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "message/addr.h"
#include "queue/bounce.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strlist.h"
#include "util/sys.h"

#define BOUNCE_HEADERS_MAX (256 * 1024)	/* original headers returned */

/* bounce_date - RFC 5322 date of t */
static void bounce_date(time_t t, char *out, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* bounce_status - the enhanced status code in a reply, or one for its
 * class ("550 5.1.1 ..." -> "5.1.1"; "550 no" -> "5.0.0") */
static void bounce_status(const char *reply, char *out, size_t len)
{
	const char *p = reply ? strchr(reply, ' ') : NULL;
	size_t n;

	if (p && isdigit((unsigned char)p[1]) && p[2] == '.') {
		n = strcspn(p + 1, " ");
		snprintf(out, len, "%.*s", (int)(n < 16 ? n : 15), p + 1);
		return;
	}
	snprintf(out, len, "%c.0.0", reply && reply[0] == '4' ? '4' : '5');
}

/* bounce_headers - append the original message's header block */
static void bounce_headers(const struct spool_msg *m, struct buf *out)
{
	struct buf h = BUF_INIT(BOUNCE_HEADERS_MAX);
	char chunk[8192];
	off_t off = m->data_off;
	char *end = NULL;

	while (end == NULL) {
		ssize_t n = pread(m->fd, chunk, sizeof(chunk), off);

		if (n <= 0 || buf_append(&h, chunk, (size_t)n) < 0)
			break;
		off += n;
		end = memmem(h.data, h.len, "\r\n\r\n", 4);
	}
	buf_append(out, h.data, end ? (size_t)(end - h.data) + 2 : h.len);
	buf_free(&h);
}

/* bounce_human - the text/plain part */
static void bounce_human(const struct spool_msg *m, struct buf *b)
{
	buf_printf(b, "Content-Description: Notification\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
		   "This is outbox on %s.\r\n\r\n"
		   "Your message could not be delivered to one or more "
		   "recipients.\r\nThe relay's answers are below.\r\n\r\n",
		   sys_fqdn());
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == RCPT_FAILED)
			buf_printf(b, "<%s>: %s\r\n", m->rcpts[i].addr,
				   m->rcpts[i].reply ? m->rcpts[i].reply :
				   "failed");
}

/* bounce_report - the message/delivery-status part */
static void bounce_report(const struct conf *c, const struct spool_msg *m,
			  struct buf *b)
{
	const struct conf_relay *rel = conf_relay_for(c, m->sender);
	char arrival[64], last[64], status[16];

	bounce_date(m->arrival, arrival, sizeof(arrival));
	bounce_date(m->last_try ? m->last_try : time(NULL), last, sizeof(last));
	buf_printf(b, "Content-Description: Delivery report\r\n"
		   "Content-Type: message/delivery-status\r\n\r\n"
		   "Reporting-MTA: dns; %s\r\nX-Outbox-Queue-ID: %s\r\n"
		   "Arrival-Date: %s\r\n", sys_fqdn(), m->id, arrival);
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct spool_rcpt *r = &m->rcpts[i];

		if (r->state != RCPT_FAILED)
			continue;
		bounce_status(r->reply, status, sizeof(status));
		buf_printf(b, "\r\nFinal-Recipient: rfc822; %s\r\n"
			   "Action: failed\r\nStatus: %s\r\n", r->addr, status);
		if (rel)
			buf_printf(b, "Remote-MTA: dns; %s\r\n", rel->host);
		buf_printf(b, "Diagnostic-Code: smtp; %s\r\n"
			   "Last-Attempt-Date: %s\r\n", r->reply ? r->reply :
			   "failed", last);
	}
}

/* bounce_text - the whole report */
static void bounce_text(const struct conf *c, const struct spool_msg *m,
			const char *to, const char *id, struct buf *b)
{
	char now[64];
	const char *domain = conf_domain(c);

	bounce_date(time(NULL), now, sizeof(now));
	buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
		   "To: <%s>\r\nSubject: Undelivered Mail Returned to Sender"
		   "\r\nDate: %s\r\nMessage-ID: <%s.bounce@%s>\r\n"
		   "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
		   "Content-Type: multipart/report; report-type=delivery-"
		   "status;\r\n\tboundary=\"%s/%s\"\r\n\r\n"
		   "This is a MIME-encapsulated message.\r\n\r\n--%s/%s\r\n",
		   domain, to, now, id, domain, id, domain, id, domain);
	bounce_human(m, b);
	buf_printf(b, "\r\n--%s/%s\r\n", id, domain);
	bounce_report(c, m, b);
	buf_printf(b, "\r\n--%s/%s\r\nContent-Description: Undelivered "
		   "Message Headers\r\nContent-Type: text/rfc822-headers\r\n"
		   "\r\n", id, domain);
	bounce_headers(m, b);
	buf_printf(b, "\r\n--%s/%s--\r\n", id, domain);
}

/* bounce_local - a sender of this host or of the [mail] domain, such as
 * root qualified by outbox: nobody reads its mailbox */
static bool bounce_local(const struct conf *c, const char *sender)
{
	const char *at = strrchr(sender, '@');

	return addr_local(sender) ||
	    (at && strcasecmp(at + 1, conf_domain(c)) == 0 &&
	     (c->mail.from == NULL || strcasecmp(sender, c->mail.from) != 0));
}

/* bounce_queue - queue a report about m's failed recipients */
int bounce_queue(const struct conf *c, struct spool *s, struct spool_msg *m,
		 char *id, size_t idlen)
{
	static struct spool_writer w;
	struct strlist rcpts = STRLIST_INIT;
	struct buf text = BUF_INIT(4 * BOUNCE_HEADERS_MAX);
	struct spool_env env = { .sender = "", .rcpts = &rcpts };
	struct spool_msg bm;
	const char *to = m->sender;

	id[0] = '\0';
	if (*m->sender == '\0')
		return 0;
	if (c->mail.bounce_to && bounce_local(c, m->sender))
		to = c->mail.bounce_to;
	strlist_add(&rcpts, to);
	spool_create(s, &w);
	bounce_text(c, m, to, w.id, &text);
	spool_put_envelope(&w, &env);
	spool_write(&w, text.data, text.len);
	snprintf(id, idlen, "%s", w.id);
	if (spool_commit(&w, &bm) == 0)
		spool_msg_free(&bm);
	log_note("%s: bounce %s queued for <%s>", m->id, id, to);
	buf_free(&text);
	strlist_free(&rcpts);
	return 0;
}
