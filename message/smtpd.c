/*
 * NAME
 *	smtpd - sendmail -bs: an SMTP server dialogue on stdin/stdout
 * DESCRIPTION
 *	See smtpd.h. One command table maps verbs to handlers; the session
 *	state (greeted, sender, recipients) lives in struct session and is
 *	changed only by the handlers.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "message/addr.h"
#include "message/input.h"
#include "message/smtpd.h"
#include "message/submit.h"
#include "queue/runner.h"
#include "queue/spool.h"
#include "util/buf.h"
#include "util/log.h"

#define SMTPD_LINE_MAX	2048	/* longest command line read */
#define SMTPD_CMD_MAX	1100	/* 512, + 500 for RCPT with DSN (RFC 3461) */
#define SMTPD_ERRORS	20	/* then 421 and goodbye */
#define SMTPD_RCPTS	10000	/* recipients per message */

struct session {
	const struct conf *conf;
	struct spool spool;
	bool spool_open;
	struct input in;
	struct buf out;		/* replies not yet written */
	struct submission sub;
	bool in_mail;		/* MAIL accepted */
	unsigned errors;
	bool quit;
};

/* smtpd_flush - write the pending replies */
static void smtpd_flush(struct session *s)
{
	size_t off = 0;

	while (off < s->out.len) {
		ssize_t n = write(STDOUT_FILENO, s->out.data + off,
				  s->out.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			exit(EX_IOERR);	/* the client went away */
		off += (size_t)n;
	}
	buf_reset(&s->out);
}

/* smtpd_reply - queue one reply line */
static void smtpd_reply(struct session *s, const char *fmt, ...)
    LOG_FMT(2, 3);

static void smtpd_reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_puts(&s->out, "\r\n");
	if (fmt[0] == '5' || fmt[0] == '4')
		s->errors++;
}

/* smtpd_reset - forget the transaction */
static void smtpd_reset(struct session *s)
{
	bool smtp = true;

	submission_free(&s->sub);
	submission_init(&s->sub);
	s->sub.smtp = smtp;
	s->sub.max_size = s->conf->mail.max_size;
	s->in_mail = false;
}

/* xtext_ok - RFC 3461 xtext: printable ASCII, '+' only as +XX */
static bool xtext_ok(const char *v)
{
	for (; *v; v++) {
		if (*v < '!' || *v > '~' || *v == '=')
			return false;
		if (*v == '+' && !(isxdigit((unsigned char)v[1]) &&
				   isxdigit((unsigned char)v[2])))
			return false;
	}
	return true;
}

/* smtpd_path - "<addr>" after "FROM:"/"TO:"; returns the rest or NULL */
static char *smtpd_path(char *arg, const char *prefix, char **addr)
{
	size_t n = strlen(prefix);
	char *close;

	if (strncasecmp(arg, prefix, n) != 0)
		return NULL;
	arg += n;
	while (*arg == ' ')
		arg++;
	if (*arg != '<' || (close = strchr(arg, '>')) == NULL)
		return NULL;
	*close = '\0';
	*addr = arg + 1;
	return close + 1;
}

/* smtpd_repeated - has dsn already a parameter named like p ("RET=") */
static bool smtpd_repeated(const struct buf *dsn, const char *name)
{
	size_t n = strlen(name);
	const char *d = buf_str(dsn);

	for (const char *q = d; (q = strstr(q, name)) != NULL; q += n)
		if (q == d || q[-1] == ' ')
			return true;
	return false;
}

/* smtpd_mail_param - one MAIL parameter; NULL if fine, else the reply */
static const char *smtpd_mail_param(struct session *s, char *p,
				    struct buf *dsn)
{
	char *v = strchr(p, '=');

	if (v)
		*v++ = '\0';
	if (v && (strcasecmp(p, "RET") == 0 || strcasecmp(p, "ENVID") == 0)) {
		char name[8];

		snprintf(name, sizeof(name), "%s=", strcasecmp(p, "RET") ?
			 "ENVID" : "RET");
		if (smtpd_repeated(dsn, name))
			return "501 5.5.4 Error: repeated DSN parameter";
	}
	if (strcasecmp(p, "SIZE") == 0 && v) {
		if (s->conf->mail.max_size && strtol(v, NULL, 10) >
		    s->conf->mail.max_size)
			return "552 5.3.4 Message size exceeds fixed limit";
	} else if (strcasecmp(p, "BODY") == 0 && v) {
		if (strcasecmp(v, "8BITMIME") == 0)
			s->sub.eightbit = true;
		else if (strcasecmp(v, "7BIT") != 0)
			return "501 5.5.4 BODY is 7BIT or 8BITMIME";
	} else if (strcasecmp(p, "RET") == 0 && v &&
		   (strcasecmp(v, "FULL") == 0 || strcasecmp(v, "HDRS") == 0)) {
		buf_printf(dsn, "%sRET=%s", dsn->len ? " " : "", v);
	} else if (strcasecmp(p, "ENVID") == 0 && v && xtext_ok(v) &&
		   strlen(v) <= 100) {
		buf_printf(dsn, "%sENVID=%s", dsn->len ? " " : "", v);
	} else if ((strcasecmp(p, "SMTPUTF8") == 0 && !v) ||
		   (strcasecmp(p, "AUTH") == 0 && v)) {
		/* SMTPUTF8 is noted from the content; AUTH (RFC 4954) is
		 * accepted, not used */
	} else {
		return "555 5.5.4 Unsupported MAIL parameter";
	}
	return NULL;
}

/* smtpd_params - run each space-separated parameter through fn */
static const char *smtpd_params(struct session *s, char *rest,
				const char *(*fn)(struct session *, char *,
						  struct buf *),
				struct buf *dsn)
{
	char *save = NULL, *p;
	const char *bad = NULL;

	for (p = strtok_r(rest, " ", &save); p && !bad;
	     p = strtok_r(NULL, " ", &save))
		bad = fn(s, p, dsn);
	return bad;
}

/* cmd_mail - MAIL FROM:<addr> [params] */
static void cmd_mail(struct session *s, char *arg)
{
	struct buf dsn = BUF_INIT(512);
	char *addr, *rest, err[256];
	const char *bad;

	if (s->in_mail) {
		smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if ((rest = smtpd_path(arg, "FROM:", &addr)) == NULL) {
		smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if ((bad = smtpd_params(s, rest, smtpd_mail_param, &dsn)) != NULL) {
		smtpd_reply(s, "%s", bad);
	} else if (submit_sender(s->conf, &s->sub, *addr ? addr : "<>", err,
				 sizeof(err)) < 0) {
		smtpd_reply(s, "501 5.1.7 %s", err);
	} else {
		s->sub.mail_dsn = dsn.len ? buf_steal(&dsn) : NULL;
		s->in_mail = true;
		smtpd_reply(s, "250 2.1.0 Ok");
	}
	if (!s->in_mail)
		smtpd_reset(s);
	buf_free(&dsn);
}

/* smtpd_rcpt_param - one RCPT parameter */
static const char *smtpd_rcpt_param(struct session *s, char *p,
				    struct buf *dsn)
{
	static const char *const notify[] = { "NEVER", "SUCCESS", "FAILURE",
					      "DELAY" };
	char *v = strchr(p, '=');

	(void)s;
	if (v == NULL)
		return "555 5.5.4 Unsupported RCPT parameter";
	if ((strncasecmp(p, "NOTIFY=", 7) == 0 && smtpd_repeated(dsn,
								 "NOTIFY=")) ||
	    (strncasecmp(p, "ORCPT=", 6) == 0 && smtpd_repeated(dsn, "ORCPT=")))
		return "501 5.5.4 Error: repeated DSN parameter";
	if (strncasecmp(p, "NOTIFY=", 7) == 0) {
		char tmp[64], *save = NULL;
		int words = 0, never = 0;

		if (strlen(v + 1) >= sizeof(tmp))
			return "501 5.5.4 Bad NOTIFY value";
		snprintf(tmp, sizeof(tmp), "%s", v + 1);
		for (char *w = strtok_r(tmp, ",", &save); w;
		     w = strtok_r(NULL, ",", &save)) {
			bool ok = false;

			for (size_t i = 0; i < 4; i++)
				ok |= strcasecmp(w, notify[i]) == 0;
			if (!ok)
				return "501 5.5.4 Bad NOTIFY value";
			words++;
			never += strcasecmp(w, "NEVER") == 0;
		}
		if (words == 0 || (never && words > 1))
			return "501 5.5.4 Bad NOTIFY value";
	} else if (strncasecmp(p, "ORCPT=", 6) != 0 || !xtext_ok(v + 1) ||
		   strchr(v + 1, ';') == NULL) {
		return "555 5.5.4 Unsupported RCPT parameter";
	}
	buf_printf(dsn, "%s%s", dsn->len ? " " : "", p);
	return NULL;
}

/* cmd_rcpt - RCPT TO:<addr> [params] */
static void cmd_rcpt(struct session *s, char *arg)
{
	struct buf dsn = BUF_INIT(1024);
	char *addr, *rest, err[256];
	const char *bad;

	if (!s->in_mail)
		smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
	else if ((rest = smtpd_path(arg, "TO:", &addr)) == NULL || !*addr)
		smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
	else if (s->sub.rcpts.n >= SMTPD_RCPTS)
		smtpd_reply(s, "452 4.5.3 Error: too many recipients");
	else if ((bad = smtpd_params(s, rest, smtpd_rcpt_param, &dsn)))
		smtpd_reply(s, "%s", bad);
	else if (submit_recipient(s->conf, &s->sub, addr, buf_str(&dsn), err,
				  sizeof(err)) < 0)
		smtpd_reply(s, "501 5.1.3 %s", err);
	else
		smtpd_reply(s, "250 2.1.5 Ok");
	buf_free(&dsn);
}

/* smtpd_spool - the spool, opened on the first DATA */
static struct spool *smtpd_spool(struct session *s)
{
	if (!s->spool_open) {
		spool_open(s->conf, &s->spool, SPOOL_CREATE);
		s->spool_open = true;
	}
	return &s->spool;
}

/* cmd_data - DATA: the message, then 250 once it is durable */
static void cmd_data(struct session *s, char *arg)
{
	struct submit_error e;
	struct spool_msg m;
	int rc;

	if (*arg) {
		smtpd_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (!s->in_mail || s->sub.rcpts.n == 0) {
		smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtpd_flush(s);
	rc = submit(s->conf, &s->sub, &s->in, smtpd_spool(s), &m, &e);
	if (rc < 0) {
		smtpd_reply(s, "%d %s", e.smtp, e.text);
	} else if (rc > 0) {
		smtpd_reply(s, "250 2.0.0 Ok: queued");
	} else {
		smtpd_reply(s, "250 2.0.0 Ok: queued as %s", m.id);
		smtpd_flush(s);
		runner_deliver_new(s->conf, &s->spool, &m, false);
		spool_msg_free(&m);
	}
	smtpd_reset(s);
}

/* cmd_helo - HELO/EHLO name */
static void cmd_helo(struct session *s, const char *arg, bool ehlo)
{
	const char *me = conf_domain(s->conf);

	if (*arg == '\0') {
		smtpd_reply(s, "501 5.5.4 Syntax: %s hostname",
			    ehlo ? "EHLO" : "HELO");
		return;
	}
	smtpd_reset(s);
	if (!ehlo) {
		smtpd_reply(s, "250 %s", me);
		return;
	}
	smtpd_reply(s, "250-%s", me);
	smtpd_reply(s, "250-PIPELINING");
	if (s->conf->mail.max_size)
		smtpd_reply(s, "250-SIZE %ld", s->conf->mail.max_size);
	else
		smtpd_reply(s, "250-SIZE");
	smtpd_reply(s, "250-8BITMIME");
	smtpd_reply(s, "250-DSN");
	smtpd_reply(s, "250-SMTPUTF8");
	smtpd_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* smtpd_command - dispatch one command line */
static void smtpd_command(struct session *s, char *line)
{
	size_t vlen = strcspn(line, " ");
	char *arg = line + vlen;

	while (*arg == ' ')
		arg++;
#define IS(verb) (vlen == strlen(verb) && strncasecmp(line, verb, vlen) == 0)
	if (IS("EHLO") || IS("HELO"))
		cmd_helo(s, arg, IS("EHLO"));
	else if (IS("MAIL"))
		cmd_mail(s, arg);
	else if (IS("RCPT"))
		cmd_rcpt(s, arg);
	else if (IS("DATA"))
		cmd_data(s, arg);
	else if (IS("RSET")) {
		smtpd_reset(s);
		smtpd_reply(s, "250 2.0.0 Ok");
	} else if (IS("NOOP"))
		smtpd_reply(s, "250 2.0.0 Ok");
	else if (IS("VRFY"))
		smtpd_reply(s, "252 2.0.0 Cannot VRFY user, but will accept "
			    "message and attempt delivery");
	else if (IS("HELP"))
		smtpd_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA "
			    "RSET NOOP VRFY HELP QUIT");
	else if (IS("QUIT")) {
		smtpd_reply(s, "221 2.0.0 Bye");
		s->quit = true;
	} else if (IS("EXPN") || IS("ETRN") || IS("TURN") || IS("STARTTLS") ||
		   IS("AUTH") || IS("BDAT"))
		smtpd_reply(s, "502 5.5.1 Error: command not implemented");
	else
		smtpd_reply(s, "500 5.5.2 Error: command not recognized");
#undef IS
}

/* smtpd_die_reply - a fatal error mid-session still gets an SMTP reply */
static struct session *smtpd_current;

/* It may run because memory ran out, and before log_die's cleanup: so it
 * allocates nothing and, if the client is gone, returns rather than
 * exits. Replies not yet written are dropped. */
static void smtpd_die_reply(int ex, const char *text)
{
	char line[SMTPD_LINE_MAX + 16];
	size_t len, off = 0;
	int n;

	if (smtpd_current == NULL)
		return;
	buf_reset(&smtpd_current->out);
	n = snprintf(line, sizeof(line), "421 4.3.0 %.*s\r\n",
		     SMTPD_LINE_MAX, text);
	len = n < 0 ? 0 : (size_t)n;
	while (off < len) {
		ssize_t k = write(STDOUT_FILENO, line + off, len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return;
		off += (size_t)k;
	}
	(void)ex;
}

/* smtpd_run - the whole session */
int smtpd_run(const struct conf *c)
{
	static struct session s;
	struct buf line = BUF_INIT(SMTPD_LINE_MAX);
	enum input_line rc;

	memset(&s, 0, sizeof(s));	/* nothing of an earlier session */
	s.conf = c;
	buf_init(&s.out, 1024 * 1024);
	input_init(&s.in, STDIN_FILENO);
	submission_init(&s.sub);
	smtpd_reset(&s);
	smtpd_current = &s;
	log_set_stderr(false);
	log_set_die_hook(smtpd_die_reply);
	smtpd_reply(&s, "220 %s ESMTP outbox", conf_domain(c));
	while (!s.quit && s.errors < SMTPD_ERRORS) {
		if (!input_pending(&s.in))
			smtpd_flush(&s);
		if ((rc = input_line(&s.in, &line)) == LINE_EOF)
			break;
		if (rc == LINE_TOO_LONG || line.len > SMTPD_CMD_MAX)
			smtpd_reply(&s, "500 5.5.2 Error: line too long");
		else if (rc == LINE_NUL || line.len == 0)
			smtpd_reply(&s, "500 5.5.2 Error: bad syntax");
		else
			smtpd_command(&s, line.data);
	}
	if (s.errors >= SMTPD_ERRORS)
		smtpd_reply(&s, "421 4.7.0 Error: too many errors");
	smtpd_flush(&s);
	smtpd_current = NULL;
	buf_free(&line);
	buf_free(&s.out);
	submission_free(&s.sub);
	if (s.spool_open)
		spool_close(&s.spool);
	return EX_OK;
}
