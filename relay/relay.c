/*
 * NAME
 *	relay - one SMTP session with the configured smarthost
 * DESCRIPTION
 *	See relay.h for the design. The connect phase reads each reply
 *	before the connect_timeout deadline (or the per-reply timeout, if
 *	sooner); the transaction has its own per-reply timeouts.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay/net.h"
#include "relay/oauth2.h"
#include "relay/relay.h"
#include "relay/sasl.h"
#include "relay/tlscache.h"
#include "message/addr.h"
#include "message/dkim.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/ossl.h"
#include "util/sys.h"

#define RELAY_IN_MAX	(64 * 1024)	/* unconsumed reply bytes */
#define RELAY_EHLO_MAX	(64 * 1024)	/* an EHLO reply, all its lines */
#define RELAY_CHUNK	65536		/* body bytes read per write */
#define RELAY_AUTH_MAX	(16 * 1024)	/* an AUTH line (RFC 4954: 12288) */

static int relay_fail(struct relay *, enum relay_step, char *err, size_t len,
		      const char *fmt, ...) LOG_FMT(5, 6);

/* relay_fail - "relay H port P: <what>; nothing was sent", and the step */
static int relay_fail(struct relay *r, enum relay_step step, char *err,
		      size_t len, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	r->step = step;
	snprintf(err, len, "relay %s port %u: %s; nothing was sent",
		 r->rc->host, r->rc->port, what);
	return -1;
}

/* relay_write - send everything, or fail and mark the session broken */
static int relay_write(struct relay *r, const char *p, size_t n)
{
	long long deadline = net_clock_ms() + 1000LL * r->rc->timeout;

	if (conn_send(&r->c, p, n, deadline) == 0)
		return 0;
	r->broken = true;
	return -1;
}

/* relay_command - one command line (CRLF added), shown as shown; the
 * copy is made at its final size and wiped: it may hold a credential */
static int relay_command(struct relay *r, const char *line, const char *shown)
{
	size_t n = strlen(line);
	char *b;
	int rc;

	if (n > RELAY_AUTH_MAX)
		return -1;
	log_verbose(">>> %s", shown ? shown : line);
	b = xmalloc(n + 3);
	snprintf(b, n + 3, "%s\r\n", line);
	rc = relay_write(r, b, n + 2);
	explicit_bzero(b, n + 3);
	free(b);
	return rc;
}

/* relay_fill - receive more reply bytes */
static int relay_fill(struct relay *r, long long deadline)
{
	char chunk[16384];
	ssize_t n;

	if (r->in_pos) {
		/* in_pos grows only past bytes found in in.data: not NULL */
		/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
		memmove(r->in.data, r->in.data + r->in_pos,
			r->in.len - r->in_pos);
		r->in.len -= r->in_pos;
		r->in_pos = 0;
	}
	if ((n = conn_recv(&r->c, chunk, sizeof(chunk), deadline)) <= 0)
		return -1;
	return buf_append(&r->in, chunk, (size_t)n);
}

/* relay_read - one complete reply before the deadline; each line also
 * goes to lines ("250-PIPELINING\n") when it is not NULL */
static int relay_read(struct relay *r, long long deadline,
		      struct smtp_reply *rep, struct buf *lines)
{
	smtp_reply_reset(rep);
	if (lines)
		buf_reset(lines);
	while (!rep->done) {
		char *start = r->in.data ? r->in.data + r->in_pos : NULL;
		char *nl = start ? memchr(start, '\n', r->in.len - r->in_pos) :
		    NULL;
		size_t len;

		if (nl == NULL) {
			if (relay_fill(r, deadline) < 0)
				goto broken;
			continue;
		}
		len = (size_t)(nl - start);
		r->in_pos += len + 1;
		if (len && start[len - 1] == '\r')
			len--;
		log_verbose("<<< %.*s", (int)len, start);
		if (smtp_reply_add(rep, start, len) < 0)
			goto broken;
		if (lines)
			buf_printf(lines, "%.*s\n", (int)len, start);
	}
	if (rep->code == 421)
		r->broken = true;
	return 0;
broken:
	r->broken = true;
	return -1;
}

/* relay_reply - read one complete reply within timeout seconds */
static int relay_reply(struct relay *r, long timeout, struct smtp_reply *rep)
{
	return relay_read(r, net_clock_ms() + 1000LL * timeout, rep, NULL);
}

/* relay_phase - a reply of the connect phase: the per-reply timeout or
 * the phase's deadline, whichever comes first */
static int relay_phase(struct relay *r, struct buf *lines, char *err,
		       size_t len)
{
	long long d = net_clock_ms() + 1000LL * r->rc->timeout;

	if (relay_read(r, d < r->deadline ? d : r->deadline, &r->last,
		       lines) == 0)
		return 0;
	return relay_fail(r, RELAY_STEP_CONNECT, err, len, "%s",
			  net_clock_ms() >= (d < r->deadline ? d : r->deadline)
			  ? "timed out waiting for the relay" :
			  "the relay closed the connection");
}

/* relay_caps - the EHLO keywords, from its reply lines */
static void relay_caps(struct relay *r)
{
	const char *p = strchr(buf_str(&r->ehlo), '\n');

	memset(&r->caps, 0, sizeof(r->caps));
	while (p && p[1]) {
		const char *end = strchr(p + 1, '\n');

		if (end == NULL)
			break;
		if (end - p > 5)
			smtp_caps_line(&r->caps, p + 5, (size_t)(end - p - 5));
		p = end;
	}
}

/* relay_observe_peer - relay_probe(): the address connected to */
static void relay_observe_peer(struct relay *r, const struct net_peer *peer)
{
	struct relay_info *i = r->info;

	snprintf(i->address, sizeof(i->address), "%s", peer->address);
	i->port = peer->port;
}

/* relay_observe - relay_probe(): the session as it stands after the
 * EHLO that follows TLS */
static void relay_observe(struct relay *r)
{
	struct relay_info *i = r->info;
	const char *caps = strchr(buf_str(&r->ehlo), '\n');
	size_t n = 0;

	if (r->c.ssl)
		tls_describe(r->c.ssl, i);
	while (caps && caps[1] && n + 2 < sizeof(i->caps)) {
		const char *end = strchr(caps + 1, '\n');
		int k;

		if (end == NULL)
			break;
		k = (int)(end - caps - 5);
		if (k > 0)
			n += (size_t)snprintf(i->caps + n, sizeof(i->caps) - n,
					      "%s%.*s", n ? ", " : "", k,
					      caps + 5);
		caps = end;
	}
}

/* relay_ehlo - EHLO (HELO if the relay refuses it); the keywords */
static int relay_ehlo(struct relay *r, char *err, size_t len)
{
	const char *name = r->rc->helo ? r->rc->helo : sys_fqdn();
	struct buf cmd = BUF_INIT(1024);
	int rc;

	buf_printf(&cmd, "EHLO %s", name);
	if (relay_command(r, buf_str(&cmd), NULL) < 0 ||
	    relay_phase(r, &r->ehlo, err, len) < 0)
		goto io;
	if (r->last.code != 250) {
		buf_reset(&cmd);
		buf_printf(&cmd, "HELO %s", name);
		if (relay_command(r, buf_str(&cmd), NULL) < 0 ||
		    relay_phase(r, NULL, err, len) < 0)
			goto io;
		buf_reset(&r->ehlo);
	}
	buf_free(&cmd);
	relay_caps(r);
	if (r->last.code == 250)
		return 0;
	return relay_fail(r, RELAY_STEP_CONNECT, err, len, "the relay refused "
			  "EHLO and HELO: %s", buf_str(&r->last.text));
io:
	buf_free(&cmd);
	rc = relay_fail(r, RELAY_STEP_CONNECT, err, len, "the relay closed "
			"the connection or timed out after EHLO");
	return rc;
}

/* relay_tls - the handshake, verified, on the open socket */
static int relay_tls(struct relay *r, char *err, size_t len)
{
	char why[768];
	bool verify;

	/* a probe (--check-relays) resumes nothing: it shows what a full
	 * handshake sees, the certificate included */
	if (conn_tls(&r->c, r->rc, r->deadline, r->info ? NULL :
		     tlscache_slot(r->rc, r->dirfd), &verify, why,
		     sizeof(why)) == 0) {
		log_verbose("TLS: %s, %s%s", SSL_get_version(r->c.ssl),
			    SSL_get_cipher_name(r->c.ssl),
			    conn_resumed(&r->c) ? ", session resumed" : "");
		return 0;
	}
	if (r->info && r->c.ssl)	/* what the relay presented */
		tls_describe(r->c.ssl, r->info);
	return relay_fail(r, r->c.ctx ? RELAY_STEP_TLS : RELAY_STEP_CONFIG,
			  err, len, "%s", why);
}

/* relay_starttls - STARTTLS, strictly: offered, 220, nothing after it */
static int relay_starttls(struct relay *r, char *err, size_t len)
{
	if (!r->caps.starttls)
		return relay_fail(r, RELAY_STEP_TLS, err, len, "STARTTLS not "
				  "offered or refused: the relay did not offer"
				  " STARTTLS");
	if (relay_command(r, "STARTTLS", NULL) < 0)
		return relay_fail(r, RELAY_STEP_TLS, err, len, "STARTTLS not "
				  "offered or refused: the relay closed the "
				  "connection");
	if (relay_phase(r, NULL, err, len) < 0)
		return -1;
	if (r->last.code != 220)
		return relay_fail(r, RELAY_STEP_TLS, err, len, "STARTTLS not "
				  "offered or refused: %s",
				  buf_str(&r->last.text));
	if (r->in_pos < r->in.len)
		return relay_fail(r, RELAY_STEP_TLS, err, len, "unexpected "
				  "data after STARTTLS, before the TLS "
				  "handshake");
	return relay_tls(r, err, len);
}

/* relay_secret - the password or bearer token, from its source */
static char *relay_secret(struct relay *r, bool force, char *err,
			  size_t errlen)
{
	const struct conf_relay *rc = r->rc;

	if (rc->oauth2_token_url)
		return oauth2_token(rc, r->dirfd, force, &r->reauth, err,
				    errlen);
	return conf_password(rc, err, errlen);
}

/* relay_sasl - the exchange after "AUTH MECH": 334s answered, to the end */
static int relay_sasl(struct relay *r, const struct sasl_cred *cred,
		      unsigned mech, char *err, size_t len)
{
	struct buf line = BUF_INIT(RELAY_AUTH_MAX);
	char shown[64];
	int rc = -1;

	if (sasl_start(cred, mech, &line) < 0) {
		relay_fail(r, RELAY_STEP_AUTH, err, len, "authentication "
			   "failed: the credentials are too long for AUTH");
		goto out;
	}
	snprintf(r->mech, sizeof(r->mech), "%s", conf_auth_name(mech));
	snprintf(shown, sizeof(shown), "AUTH %s (credentials not shown)",
		 r->mech);
	if (relay_command(r, buf_str(&line), shown) < 0) {
		relay_fail(r, RELAY_STEP_AUTH, err, len, "authentication "
			   "failed: the relay closed the connection");
		goto out;
	}
	for (unsigned step = 0; step < 4; step++) {
		if (relay_phase(r, NULL, err, len) < 0)
			goto out;
		if (r->last.code != 334)
			break;
		explicit_bzero(line.data, line.len);
		buf_reset(&line);
		/* the text after "334 " is the challenge */
		if (sasl_step(cred, mech, step, r->last.text.len > 4 ?
			      buf_str(&r->last.text) + 4 : "", &line) < 0)
			buf_puts(&line, "*");	/* cancel (RFC 4954 4) */
		if (relay_command(r, buf_str(&line), "(credentials not shown)")
		    < 0) {
			relay_fail(r, RELAY_STEP_AUTH, err, len, "authenti"
				   "cation failed: the relay closed the "
				   "connection");
			goto out;
		}
	}
	rc = 0;
out:
	explicit_bzero(line.data, line.len);
	buf_free(&line);
	return rc;
}

/* relay_auth - AUTH with an allowed mechanism the relay offers */
static int relay_auth(struct relay *r, const char *secret, char *err,
		      size_t len)
{
	const struct conf_relay *rc = r->rc;
	struct sasl_cred cred = { rc->user, secret, rc->host, rc->port };
	unsigned mech;
	int rv;

	if (rc->auth == 0)
		return 0;
	if (!r->caps.auth)
		return relay_fail(r, RELAY_STEP_AUTH, err, len, "did not "
				  "offer AUTH after TLS");
	if ((mech = sasl_pick(rc->auth, buf_str(&r->ehlo), secret != NULL))
	    == 0)
		rv = relay_fail(r, RELAY_STEP_AUTH, err, len, "authentication "
				"failed: no allowed mechanism offered (see "
				"auth in outbox(8))");
	else if ((rv = relay_sasl(r, &cred, mech, err, len)) == 0 &&
		 r->last.code != 235)
		rv = relay_fail(r, RELAY_STEP_AUTH, err, len, "authentication "
				"failed: %s", buf_str(&r->last.text));
	r->auth_ok = rv == 0;
	return rv;
}

/* relay_greeting - the relay's 220 */
static int relay_greeting(struct relay *r, char *err, size_t len)
{
	if (relay_phase(r, NULL, err, len) < 0)
		return -1;
	if (r->last.code == 220)
		return 0;
	return relay_fail(r, RELAY_STEP_CONNECT, err, len, "cannot connect: "
			  "the relay greeted with %s", buf_str(&r->last.text));
}

/* relay_session - TCP, TLS, EHLO and AUTH with this secret */
static int relay_session(struct relay *r, const char *secret, char *err,
			 size_t len)
{
	const struct conf_relay *rc = r->rc;
	struct net_peer peer;
	enum net_fail fail;
	char why[768];

	log_verbose("connecting to %s port %u", rc->host, rc->port);
	if ((r->c.fd = net_connect(rc, r->deadline, &peer, &fail, why,
				   sizeof(why))) < 0)
		return relay_fail(r, fail == NET_RESOLVE ? RELAY_STEP_RESOLVE :
				  RELAY_STEP_CONNECT, err, len, "%s", why);
	if (r->info)
		relay_observe_peer(r, &peer);
	/* the TLS context is built while the relay greets, unless OpenSSL
	 * is still loading in the warm-up thread: then at the handshake,
	 * and the greeting, EHLO and STARTTLS overlap the loading */
	if (rc->tls != CONF_TLS_NONE && !ossl_warming() &&
	    conn_prepare(&r->c, rc, why, sizeof(why)) < 0)
		return relay_fail(r, RELAY_STEP_CONFIG, err, len, "%s", why);
	if (rc->tls == CONF_TLS_IMPLICIT && relay_tls(r, err, len) < 0)
		return -1;
	if (relay_greeting(r, err, len) < 0 || relay_ehlo(r, err, len) < 0)
		return -1;
	if (rc->tls == CONF_TLS_STARTTLS &&
	    (relay_starttls(r, err, len) < 0 || relay_ehlo(r, err, len) < 0))
		return -1;
	if (r->info)
		relay_observe(r);
	return relay_auth(r, secret, err, len);
}

/* relay_connect - one connect phase; the secret is fetched first, so a
 * missing one costs the relay no connection */
static int relay_connect(struct relay *r, bool force, char *err, size_t len)
{
	char *secret = NULL;
	int rv;

	r->auth_ok = false;
	if ((r->rc->auth & ~AUTH_EXTERNAL) &&
	    (secret = relay_secret(r, force, err, len)) == NULL) {
		r->step = RELAY_STEP_SECRET;
		return -1;
	}
	/* the clock starts once the secret is there: a password_command
	 * that asks, or a slow token endpoint, does not eat into it */
	r->deadline = net_clock_ms() + 1000LL * r->rc->connect_timeout;
	rv = relay_session(r, secret, err, len);
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	return rv;
}

/* relay_drop - forget a failed connect phase's connection */
static void relay_drop(struct relay *r)
{
	conn_close(&r->c);
	buf_reset(&r->in);
	r->in_pos = 0;
}

/* relay_start - connect, TLS, AUTH; 0 when ready for MAIL. An OAuth2
 * token the relay refuses is refreshed once */
static int relay_start(struct relay *r, const struct conf_relay *rc,
		       int dirfd, struct relay_info *info, char *err,
		       size_t len)
{
	int rv;

	/* OpenSSL writes with write(2): a relay that resets must be an
	 * error to handle, not a signal that ends the process */
	signal(SIGPIPE, SIG_IGN);
	memset(r, 0, sizeof(*r));
	r->rc = rc;
	r->info = info;
	r->dirfd = dirfd;
	r->c.fd = -1;
	buf_init(&r->in, RELAY_IN_MAX);
	buf_init(&r->last.text, SMTP_TEXT_MAX);
	buf_init(&r->ehlo, RELAY_EHLO_MAX);
	rv = relay_connect(r, false, err, len);
	if (rv < 0 && r->step == RELAY_STEP_AUTH && rc->oauth2_token_url &&
	    r->c.fd >= 0) {
		log_verbose("the relay refused the access token; refreshing");
		relay_drop(r);
		rv = relay_connect(r, true, err, len);
	}
	if (rv == 0)
		return 0;
	r->broken = true;
	relay_close(r);
	return -1;
}

/* relay_open - a session ready for MAIL, or -1 with the reason */
int relay_open(struct relay *r, const struct conf_relay *rc, int dirfd,
	       char *err, size_t len)
{
	return relay_start(r, rc, dirfd, NULL, err, len);
}

/* relay_probe - connect, TLS and AUTH as a delivery would, then QUIT;
 * info tells what was seen and which step failed */
int relay_probe(const struct conf_relay *rc, int dirfd,
		struct relay_info *info, char *err, size_t len)
{
	struct relay r;
	int rv;

	memset(info, 0, sizeof(*info));
	rv = relay_start(&r, rc, dirfd, info, err, len);
	info->step = rv == 0 ? RELAY_STEP_NONE : r.step != RELAY_STEP_NONE ?
	    r.step : RELAY_STEP_CONNECT;
	info->authenticated = rv == 0 && rc->auth;
	snprintf(info->mech, sizeof(info->mech), "%s", r.mech);
	if (rv == 0)
		relay_close(&r);
	return rv;
}

/*
 * The transaction. Commands are numbered: 0 is MAIL, 1..n the RCPTs of
 * the pending recipients, n+1 DATA. With PIPELINING up to TXN_WINDOW
 * commands go out in one write before their replies are read (bounded,
 * so a huge recipient list cannot deadlock against a server that stops
 * reading while its replies are unread); without it, one at a time.
 *
 * With CHUNKING too (RFC 3030), a message of at most TXN_BDAT_MAX bytes
 * whose commands fit one window goes as "BDAT size LAST" right after
 * the RCPTs, its bytes following at once, unstuffed: one round trip per
 * message instead of two. The relay reads the chunk even when it
 * refused MAIL or every RCPT, so nothing is left out of step; a larger
 * message waits for 354 rather than upload what may be refused.
 */
#define TXN_WINDOW 100
#define TXN_BDAT_MAX (1024 * 1024)

struct txn {
	struct relay *r;
	struct spool_msg *m;
	size_t *idx;		/* indexes of the pending recipients */
	bool *ok;		/* RCPT accepted, per idx */
	size_t n;
	size_t accepted;
	bool bdat;		/* BDAT LAST instead of DATA */
	bool replied;		/* any reply seen in this transaction */
	struct smtp_reply mail;
	struct smtp_reply data;
	struct smtp_reply tmp;
};

/* txn_verdict - record a recipient's outcome from a reply */
static void txn_verdict(struct spool_rcpt *rc, const struct smtp_reply *rep)
{
	int cls = rep->code / 100;

	rc->state = (char)(cls == 2 ? RCPT_DONE : cls == 5 ? RCPT_FAILED :
			   RCPT_PENDING);
	free(rc->reply);
	rc->reply = xstrdup(buf_str(&rep->text));
}

/* txn_dkim_size - bytes the DKIM-Signature fields add on the wire */
static size_t txn_dkim_size(const struct spool_msg *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->dkim.n; i++) {
		n += strlen(m->dkim.v[i]) + 2;		/* its CRLF */
		for (const char *p = m->dkim.v[i]; *p; p++)
			n += (*p == '\t') * 2;		/* each fold's CRLF */
	}
	return n;
}

/* txn_mail - MAIL FROM with the parameters the relay understands */
static void txn_mail(struct txn *t, struct buf *out)
{
	const struct smtp_caps *caps = &t->r->caps;
	const struct spool_msg *m = t->m;

	buf_printf(out, "MAIL FROM:<%s>", m->sender);
	if (caps->size)
		buf_printf(out, " SIZE=%lld", (long long)m->data_len +
			   (long long)txn_dkim_size(m));
	if (caps->eightbit && strcmp(m->body, "8BITMIME") == 0)
		buf_puts(out, " BODY=8BITMIME");
	if (caps->smtputf8 && m->smtputf8 != UTF8_NO)
		buf_puts(out, " SMTPUTF8");
	if (caps->dsn && m->mail_dsn)
		buf_printf(out, " %s", m->mail_dsn);
}

/* txn_ends_in_crlf - the message's last byte is a line feed */
static bool txn_ends_in_crlf(const struct spool_msg *m)
{
	char c = '\n';

	return m->data_len == 0 ||
	    (pread(m->fd, &c, 1, m->data_off + m->data_len - 1) == 1 &&
	     c == '\n');
}

/* txn_bdat_size - the chunk: DKIM fields, the message, a final CRLF if
 * the message lacks one */
static off_t txn_bdat_size(const struct txn *t)
{
	return t->m->data_len + (off_t)txn_dkim_size(t->m) +
	    (txn_ends_in_crlf(t->m) ? 0 : 2);
}

/* txn_queue - append command k to out; false if it must not be sent */
static bool txn_queue(struct txn *t, size_t k, struct buf *out)
{
	const struct spool_msg *m = t->m;
	size_t start = out->len;

	if (k == 0) {
		txn_mail(t, out);
	} else if (k <= t->n) {
		const struct spool_rcpt *rc = &m->rcpts[t->idx[k - 1]];

		buf_printf(out, "RCPT TO:<%s>", rc->addr);
		if (t->r->caps.dsn && rc->dsn)
			buf_printf(out, " %s", rc->dsn);
	} else if (t->bdat) {
		buf_printf(out, "BDAT %lld LAST", (long long)txn_bdat_size(t));
	} else {
		if (!t->r->caps.pipelining && t->accepted == 0)
			return false;
		buf_puts(out, "DATA");
	}
	log_verbose(">>> %s", out->data + start);
	buf_puts(out, "\r\n");
	return true;
}

/* txn_answer - take the reply to command k */
static void txn_answer(struct txn *t, size_t k, struct smtp_reply *rep)
{
	t->replied = true;
	if (k == 0) {
		smtp_reply_reset(&t->mail);
		buf_append(&t->mail.text, rep->text.data, rep->text.len);
		t->mail.code = rep->code;
	} else if (k <= t->n) {
		if (t->mail.code / 100 != 2)
			return;		/* MAIL failed: its reply decides */
		if (rep->code / 100 == 2) {
			t->ok[k - 1] = true;
			t->accepted++;
		} else {
			txn_verdict(&t->m->rcpts[t->idx[k - 1]], rep);
		}
	} else {
		smtp_reply_reset(&t->data);
		buf_append(&t->data.text, rep->text.data, rep->text.len);
		t->data.code = rep->code;
	}
}

static int txn_body(struct txn *);

/* txn_envelope - MAIL, RCPTs and DATA (or BDAT and the message) with
 * their replies; -1 on I/O */
static int txn_envelope(struct txn *t)
{
	struct relay *r = t->r;
	size_t total = t->n + 2, sent = 0, answered = 0;
	size_t window = r->caps.pipelining ? TXN_WINDOW : 1;
	struct buf out = BUF_INIT(TXN_WINDOW * (ADDR_MAX + 64));
	int rc = 0;

	while (answered < total && rc == 0) {
		while (sent < total && sent - answered < window &&
		       txn_queue(t, sent, &out))
			sent++;
		if (sent == answered)
			break;		/* nothing accepted: no DATA */
		if ((rc = relay_write(r, out.data, out.len)) < 0 ||
		    (t->bdat && sent == total && (rc = txn_body(t)) < 0))
			break;
		buf_reset(&out);
		while (answered < sent && rc == 0) {
			rc = relay_reply(r, t->bdat && answered + 1 == total ?
					 r->rc->data_timeout : r->rc->timeout,
					 &t->tmp);
			if (rc == 0)
				txn_answer(t, answered++, &t->tmp);
		}
		if (t->mail.code / 100 != 2)
			break;		/* MAIL refused: no point in more */
	}
	buf_free(&out);
	return rc;
}

/* txn_dkim - the DKIM-Signature fields made at submission, first */
static int txn_dkim(struct txn *t)
{
	struct buf wire = BUF_INIT(2 * (t->m->dkim.n + 1) * SPOOL_DKIM_SLOT);
	int rc;

	for (size_t i = 0; i < t->m->dkim.n; i++) {
		dkim_unfold_tabs(t->m->dkim.v[i], &wire);
		buf_puts(&wire, "\r\n");
	}
	rc = wire.len ? relay_write(t->r, wire.data, wire.len) : 0;
	buf_free(&wire);
	return rc;
}

/* txn_body - the message: dot-stuffed and ended by the dot for DATA; as
 * it is (a CRLF added if it lacks a last one) for BDAT */
static int txn_body(struct txn *t)
{
	static char in[RELAY_CHUNK], out[2 * RELAY_CHUNK + 8];
	off_t off = t->m->data_off, end = off + t->m->data_len;
	bool bol = true;
	size_t o;

	if (txn_dkim(t) < 0)
		return -1;
	while (off < end) {
		size_t want = end - off < RELAY_CHUNK ? (size_t)(end - off) :
		    RELAY_CHUNK;
		ssize_t n = pread(t->m->fd, in, want, off);

		if (n <= 0) {
			log_warn("%s: cannot read the queue file: %m",
				 t->m->id);
			return -1;
		}
		if (t->bdat) {
			if (relay_write(t->r, in, (size_t)n) < 0)
				return -1;
			bol = in[n - 1] == '\n';
		} else {
			o = smtp_stuff(in, (size_t)n, out, &bol);
			if (relay_write(t->r, out, o) < 0)
				return -1;
		}
		off += n;
	}
	log_verbose(">>> (%lld bytes of message)", (long long)t->m->data_len);
	if (t->bdat)
		return bol ? 0 : relay_write(t->r, "\r\n", 2);
	log_verbose(">>> .");
	return relay_write(t->r, bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5);
}

/* txn_rset - abandon the transaction so the session can go on */
static void txn_rset(struct txn *t)
{
	if (t->r->broken)
		return;
	log_verbose(">>> RSET");
	if (relay_write(t->r, "RSET\r\n", 6) == 0)
		relay_reply(t->r, t->r->rc->timeout, &t->tmp);
}

/* txn_fail_all - every pending recipient gets this reply */
static void txn_fail_all(struct txn *t, const struct smtp_reply *rep)
{
	for (size_t i = 0; i < t->n; i++)
		txn_verdict(&t->m->rcpts[t->idx[i]], rep);
}

/* txn_accepted - the accepted recipients get this reply */
static void txn_accepted(struct txn *t, const struct smtp_reply *rep)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->ok[i])
			txn_verdict(&t->m->rcpts[t->idx[i]], rep);
}

/* txn_set_error - the message-level note that mailq shows */
static void txn_set_error(struct spool_msg *m, const char *text)
{
	free(m->error);
	m->error = text ? xstrdup(text) : NULL;
}

/* txn_init - collect the pending recipients */
static void txn_init(struct txn *t, struct relay *r, struct spool_msg *m)
{
	memset(t, 0, sizeof(*t));
	t->r = r;
	t->m = m;
	t->idx = xcalloc(m->nrcpts, sizeof(*t->idx));
	t->ok = xcalloc(m->nrcpts, sizeof(*t->ok));
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == RCPT_PENDING)
			t->idx[t->n++] = i;
	buf_init(&t->mail.text, SMTP_TEXT_MAX);
	buf_init(&t->data.text, SMTP_TEXT_MAX);
	buf_init(&t->tmp.text, SMTP_TEXT_MAX);
	t->bdat = r->caps.chunking && r->caps.pipelining &&
	    t->n + 2 <= TXN_WINDOW && m->data_len <= TXN_BDAT_MAX;
}

/* txn_free - release the transaction */
static void txn_free(struct txn *t)
{
	free(t->idx);
	free(t->ok);
	smtp_reply_free(&t->mail);
	smtp_reply_free(&t->data);
	smtp_reply_free(&t->tmp);
}

/* txn_unfit - refuse before sending what the relay said it cannot take */
static bool txn_unfit(struct txn *t)
{
	unsigned long max = t->r->caps.size_max;
	struct smtp_reply rep = { 0 };

	buf_init(&rep.text, SMTP_TEXT_MAX);
	if (max && (unsigned long long)t->m->data_len > max) {
		rep.code = 552;
		buf_printf(&rep.text, "552 5.3.4 message size %lld exceeds the"
			   " relay's limit of %lu", (long long)t->m->data_len,
			   max);
	} else if (t->m->smtputf8 == UTF8_NEED && !t->r->caps.smtputf8) {
		rep.code = 553;
		buf_puts(&rep.text, "553 5.6.7 the relay does not support "
			 "SMTPUTF8, which a non-ASCII address needs");
	} else {
		smtp_reply_free(&rep);
		return false;
	}
	txn_fail_all(t, &rep);
	txn_set_error(t->m, buf_str(&rep.text));
	smtp_reply_free(&rep);
	return true;
}

/* txn_bdat_end - the outcome of a BDAT transaction, from its replies */
static enum relay_result txn_bdat_end(struct txn *t)
{
	if (t->accepted == 0) {
		txn_set_error(t->m, "no recipient was accepted");
		txn_rset(t);
		return RELAY_DONE;
	}
	txn_accepted(t, &t->data);
	txn_set_error(t->m, t->data.code / 100 == 2 ? NULL :
		      buf_str(&t->data.text));
	t->r->sent++;
	return RELAY_DONE;
}

/* txn_run - the whole transaction; RELAY_STALE if a reused link was dead */
static enum relay_result txn_run(struct txn *t)
{
	struct relay *r = t->r;
	bool reused = r->sent > 0;
	struct smtp_reply *fin = &t->tmp;

	if (txn_envelope(t) < 0)
		goto io;
	if (t->mail.code / 100 != 2) {
		if (reused && t->mail.code == 421)
			return RELAY_STALE;
		if (t->mail.code / 100 == 5)
			txn_fail_all(t, &t->mail);
		txn_set_error(t->m, buf_str(&t->mail.text));
		txn_rset(t);
		return RELAY_DONE;
	}
	if (t->bdat)
		return txn_bdat_end(t);
	if (t->accepted == 0 || t->data.code != 354) {
		if (t->data.code == 354 && relay_write(r, ".\r\n", 3) == 0)
			relay_reply(r, r->rc->timeout, fin);
		if (t->accepted)
			txn_accepted(t, &t->data);
		txn_set_error(t->m, t->accepted ? buf_str(&t->data.text) :
			      "no recipient was accepted");
		txn_rset(t);
		return RELAY_DONE;
	}
	if (txn_body(t) < 0 ||
	    relay_reply(r, r->rc->data_timeout, fin) < 0)
		goto io;
	txn_accepted(t, fin);
	txn_set_error(t->m, fin->code / 100 == 2 ? NULL : buf_str(&fin->text));
	r->sent++;
	return RELAY_DONE;
io:
	if (reused && !t->replied)
		return RELAY_STALE;
	txn_set_error(t->m, "connection to the relay lost or timed out");
	return RELAY_DONE;
}

/* relay_send - one message over the open session */
enum relay_result relay_send(struct relay *r, struct spool_msg *m)
{
	struct txn t;
	enum relay_result res = RELAY_DONE;

	txn_init(&t, r, m);
	if (t.n && !txn_unfit(&t))
		res = txn_run(&t);
	txn_free(&t);
	return res;
}

/* relay_close - QUIT if the session is healthy, then free everything */
void relay_close(struct relay *r)
{
	struct smtp_reply rep = { 0 };

	if (r->c.fd >= 0 && !r->broken) {
		buf_init(&rep.text, SMTP_TEXT_MAX);
		if (relay_command(r, "QUIT", NULL) == 0)
			relay_reply(r, 10, &rep);
		smtp_reply_free(&rep);
	}
	if (r->c.ssl)
		tlscache_save(r->rc, r->dirfd);
	conn_close(&r->c);
	buf_free(&r->in);
	buf_free(&r->ehlo);
	smtp_reply_free(&r->last);
}
