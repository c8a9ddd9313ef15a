/*
 * NAME
 *	relay - one SMTP session with the configured smarthost
 * DESCRIPTION
 *	See relay.h for the design. The connect phase (libcurl) and the
 *	transaction (ours) share nothing but the socket and the TLS
 *	session inside the curl handle.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay/curl.h"
#include "relay/oauth2.h"
#include "relay/relay.h"
#include "message/addr.h"
#include "message/dkim.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"

#define RELAY_IN_MAX	(64 * 1024)	/* unconsumed reply bytes */
#define RELAY_CHUNK	65536		/* body bytes read per write */

/* relay_sockopt - acknowledge at once: a server that writes a reply in
 * two segments (Nagle) otherwise waits for our delayed ACK, ~40 ms per
 * reply on Linux. TCP_QUICKACK wears off, so relay_fill sets it again */
static int relay_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	struct relay *r = arg;
	int on = 1;

	(void)purpose;
	if (r)
		r->sock = fd;	/* also for the connect phase's replies */
	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
	return CURL_SOCKOPT_OK;
}

/* relay_debug - libcurl's debug callback: keeps acknowledging at once
 * through the TLS handshake, and notes the SASL mechanism used (only
 * the word after "AUTH ": the rest of that line is a credential) */
static int relay_debug(CURL *h, curl_infotype type, char *data, size_t size,
		       void *arg)
{
	struct relay *r = arg;
	size_t n;

	(void)h;
	if (r->sock != CURL_SOCKET_BAD)
		relay_sockopt(NULL, r->sock, CURLSOCKTYPE_IPCXN);
	if (type == CURLINFO_HEADER_OUT && size > 5 &&
	    strncmp(data, "AUTH ", 5) == 0) {
		for (n = 0; n + 5 < size && n + 1 < sizeof(r->mech); n++)
			if (data[5 + n] == ' ' || data[5 + n] == '\r')
				break;
		memcpy(r->mech, data + 5, n);
		r->mech[n] = '\0';
		log_verbose(">>> AUTH %s (credentials not shown)", r->mech);
	}
	return 0;
}

/* relay_observe - relay_probe(): the session as it stands after the
 * EHLO that follows TLS (an AUTH failure later loses the handle) */
static void relay_observe(struct relay *r)
{
	struct relay_info *i = r->info;
	const char *ip = NULL;
	const char *caps = buf_str(&r->ehlo);
	size_t n = 0;

	if (r->api->easy_getinfo(r->curl, CURLINFO_PRIMARY_IP, &ip) ==
	    CURLE_OK && ip)
		snprintf(i->address, sizeof(i->address), "%s", ip);
	r->api->easy_getinfo(r->curl, CURLINFO_PRIMARY_PORT, &i->port);
	if (r->rc->tls != CONF_TLS_NONE)
		tls_describe(r->api, r->curl, i);
	caps = strchr(caps, '\n');	/* the first line greets */
	while (caps && caps[1] && n + 2 < sizeof(i->caps)) {
		const char *end = strchr(caps + 1, '\n');
		int len;

		if (end == NULL)	/* a last line cut short: left out */
			break;
		len = (int)(end - caps - 5);
		if (len > 0)
			n += (size_t)snprintf(i->caps + n, sizeof(i->caps) - n,
					      "%s%.*s", n ? ", " : "", len,
					      caps + 5);
		caps = end;
	}
}

/* relay_header - libcurl callback: every reply line of the connect phase */
static size_t relay_header(char *p, size_t size, size_t n, void *arg)
{
	struct relay *r = arg;
	size_t len = size * n;
	bool first = r->last.done || r->last.code == 0;
	int code;
	bool last;

	while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	log_verbose("<<< %.*s", (int)len, p);
	if (r->sock != CURL_SOCKET_BAD)
		relay_sockopt(NULL, r->sock, CURLSOCKTYPE_IPCXN);
	if (smtp_reply_line(p, len, &code, &last) < 0)
		return size * n;
	if (first)
		smtp_reply_reset(&r->last);
	smtp_reply_add(&r->last, p, len);
	if (code == 250 && first) {
		memset(&r->caps, 0, sizeof(r->caps));	/* a new EHLO reply */
		buf_reset(&r->ehlo);
		r->ehlo_seen = true;
	} else if (code == 250 && len > 4) {
		smtp_caps_line(&r->caps, p + 4, len - 4);
	}
	if (code == 250)
		buf_printf(&r->ehlo, "%.*s\n", (int)len, p);
	if (code == 250 && last && r->tls_done && r->info)
		relay_observe(r);
	if (code == 220 && last && r->ehlo_seen)
		r->tls_done = true;	/* 220 to STARTTLS: TLS follows */
	if (code == 235 && last && r->tls_done)
		r->auth_ok = true;
	return size * n;
}

/* relay_url - smtp[s]://host:port/ehlo-name */
static void relay_url(const struct conf_relay *rc, struct buf *u)
{
	bool v6 = strchr(rc->host, ':') && rc->host[0] != '[';

	buf_printf(u, "%s://%s%s%s:%u/%s",
		   rc->tls == CONF_TLS_IMPLICIT ? "smtps" : "smtp",
		   v6 ? "[" : "", rc->host, v6 ? "]" : "", rc->port,
		   rc->helo ? rc->helo : sys_fqdn());
}

/* relay_pins - "sha256//A;sha256//B" from the configured list */
static void relay_pins(const char *v, struct buf *out)
{
	while (*v) {
		size_t n;

		v += strspn(v, " \t,;");
		if ((n = strcspn(v, " \t,;")) == 0)
			break;
		if (strncmp(v, "sha256//", 8) == 0) {
			v += 8;
			n -= 8;
		}
		buf_printf(out, "%ssha256//%.*s", out->len ? ";" : "", (int)n,
			   v);
		v += n;
	}
}

/* relay_route - where to connect: address, source, IP version, proxy */
static void relay_route(struct relay *r)
{
	const struct conf_relay *rc = r->rc;
	struct buf b = BUF_INIT(1024);
	bool v6 = rc->address && strchr(rc->address, ':') &&
	    rc->address[0] != '[';

	if (rc->address) {
		buf_printf(&b, "::%s%s%s:%u", v6 ? "[" : "", rc->address,
			   v6 ? "]" : "", rc->port);
		r->connect_to = r->api->slist_append(NULL, buf_str(&b));
		r->api->easy_setopt(r->curl, CURLOPT_CONNECT_TO, r->connect_to);
		buf_reset(&b);
	}
	if (rc->source) {
		buf_printf(&b, "host!%s", rc->source);
		r->api->easy_setopt(r->curl, CURLOPT_INTERFACE, buf_str(&b));
	}
	r->api->easy_setopt(r->curl, CURLOPT_IPRESOLVE, rc->ip_version == 4 ?
			 (long)CURL_IPRESOLVE_V4 : rc->ip_version == 6 ?
			 (long)CURL_IPRESOLVE_V6 :
			 (long)CURL_IPRESOLVE_WHATEVER);
	/* an inherited all_proxy never applies: only the configured one */
	r->api->easy_setopt(r->curl, CURLOPT_PROXY, rc->proxy ? rc->proxy : "");
	buf_free(&b);
}

/* relay_tls - verified TLS: minimum version, trust, pins, client cert */
static void relay_tls(struct relay *r)
{
	const struct conf_relay *rc = r->rc;
	CURL *h = r->curl;
	struct buf pins = BUF_INIT(4096);

	r->api->easy_setopt(h, CURLOPT_USE_SSL, rc->tls == CONF_TLS_NONE ?
			 (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
	r->api->easy_setopt(h, CURLOPT_SSLVERSION, rc->tls_min == 13 ?
			 (long)CURL_SSLVERSION_TLSv1_3 :
			 (long)CURL_SSLVERSION_TLSv1_2);
	r->api->easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	r->api->easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (rc->ca_file || rc->ca_path) {
		/* they replace the system store, they do not add to it */
		r->api->easy_setopt(h, CURLOPT_CAINFO, rc->ca_file);
		r->api->easy_setopt(h, CURLOPT_CAPATH, rc->ca_path);
	}
	if (rc->pin_sha256) {
		relay_pins(rc->pin_sha256, &pins);
		r->api->easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, buf_str(&pins));
	}
	if (rc->client_cert) {
		r->api->easy_setopt(h, CURLOPT_SSLCERT, rc->client_cert);
		r->api->easy_setopt(h, CURLOPT_SSLKEY, rc->client_key ?
				 rc->client_key : rc->client_cert);
	}
	r->api->easy_setopt(h, CURLOPT_CERTINFO, 1L);
	buf_free(&pins);
}

/* relay_setopts - a hardened handle: verified TLS, no fallback */
static void relay_setopts(struct relay *r, const char *url)
{
	const struct conf_relay *rc = r->rc;
	CURL *h = r->curl;

	r->api->easy_setopt(h, CURLOPT_URL, url);
	r->api->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	r->api->easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	r->api->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	r->api->easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	r->api->easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	r->api->easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, relay_sockopt);
	r->api->easy_setopt(h, CURLOPT_SOCKOPTDATA, r);
	r->api->easy_setopt(h, CURLOPT_DEBUGFUNCTION, relay_debug);
	r->api->easy_setopt(h, CURLOPT_DEBUGDATA, r);
	r->api->easy_setopt(h, CURLOPT_VERBOSE, 1L);
	r->api->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, rc->connect_timeout);
	r->api->easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, rc->timeout);
	r->api->easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
	r->api->easy_setopt(h, CURLOPT_HEADERFUNCTION, relay_header);
	r->api->easy_setopt(h, CURLOPT_HEADERDATA, r);
	relay_route(r);
	relay_tls(r);
}

/* relay_login_options - "AUTH=PLAIN;AUTH=LOGIN": only what is allowed,
 * never libcurl's own choice among everything the server offers */
static void relay_login_options(unsigned auth, struct buf *out)
{
	for (unsigned bit = 1; bit <= AUTH_EXTERNAL; bit <<= 1)
		if (auth & bit)
			buf_printf(out, "%sAUTH=%s", out->len ? ";" : "",
				   conf_auth_name(bit));
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

/* relay_setauth - credentials and the allowed mechanisms */
static int relay_setauth(struct relay *r, bool force, char *err,
			 size_t errlen)
{
	const struct conf_relay *rc = r->rc;
	struct buf opts = BUF_INIT(256);
	char *secret = NULL;

	if (rc->auth == 0)
		return 0;
	if ((rc->auth & ~AUTH_EXTERNAL) &&
	    (secret = relay_secret(r, force, err, errlen)) == NULL) {
		r->step = RELAY_STEP_SECRET;
		return -1;
	}
	if (rc->user)
		r->api->easy_setopt(r->curl, CURLOPT_USERNAME, rc->user);
	/* libcurl picks EXTERNAL only when there is no password */
	if (secret && (rc->auth & ~(AUTH_BEARER | AUTH_EXTERNAL)))
		r->api->easy_setopt(r->curl, CURLOPT_PASSWORD, secret);
	if (secret && (rc->auth & AUTH_BEARER))
		r->api->easy_setopt(r->curl, CURLOPT_XOAUTH2_BEARER, secret);
	relay_login_options(rc->auth, &opts);
	r->api->easy_setopt(r->curl, CURLOPT_LOGIN_OPTIONS, buf_str(&opts));
	r->api->easy_setopt(r->curl, CURLOPT_SASL_IR, 1L);
	buf_free(&opts);
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	return 0;
}

/* relay_classify - which step a libcurl error belongs to, in words */
static enum relay_step relay_classify(CURLcode rc, const char **what)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		*what = "cannot resolve the host name";
		return RELAY_STEP_RESOLVE;
	case CURLE_USE_SSL_FAILED:
		*what = "STARTTLS not offered or refused";
		return RELAY_STEP_TLS;
	case CURLE_PEER_FAILED_VERIFICATION:
		*what = "certificate verification failed";
		return RELAY_STEP_TLS;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		*what = "the certificate's public key does not match "
		    "pin_sha256";
		return RELAY_STEP_TLS;
	case CURLE_SSL_CERTPROBLEM:
		*what = "cannot use the client certificate";
		return RELAY_STEP_TLS;
	case CURLE_SSL_CONNECT_ERROR:
		*what = "TLS handshake failed";
		return RELAY_STEP_TLS;
	case CURLE_LOGIN_DENIED:
		*what = "authentication failed";
		return RELAY_STEP_AUTH;
	case CURLE_OPERATION_TIMEDOUT:
		*what = "timed out";
		return RELAY_STEP_CONNECT;
	default:
		*what = "cannot connect";
		return RELAY_STEP_CONNECT;
	}
}

/* relay_why - one line for a failed connect phase */
static void relay_why(struct relay *r, CURLcode rc, char *err, size_t len)
{
	const struct conf_relay *c = r->rc;
	const char *detail = r->errbuf[0] ? r->errbuf :
	    r->api->easy_strerror(rc);
	const char *what;

	r->step = relay_classify(rc, &what);
	if (rc == CURLE_WEIRD_SERVER_REPLY && c->tls == CONF_TLS_STARTTLS &&
	    r->tls_done) {
		/* bytes after "220" to STARTTLS, before the handshake: an
		 * injection attempt (CVE-2021-22947) that libcurl refused */
		r->step = RELAY_STEP_TLS;
		what = "unexpected data after STARTTLS, before the TLS "
		    "handshake";
	}
	if (rc == CURLE_LOGIN_DENIED)
		detail = r->last.code && r->last.code != 250 ?
		    buf_str(&r->last.text) :
		    "no allowed mechanism offered (see auth in outbox(8))";
	snprintf(err, len, "relay %s port %u: %s: %s; nothing was sent",
		 c->host, c->port, what, detail);
}

/* relay_connect - one connect phase: TCP, TLS, AUTH, by libcurl */
static int relay_connect(struct relay *r, bool force, char *err, size_t len)
{
	struct buf url = BUF_INIT(4096);
	CURLcode rc;

	r->errbuf[0] = '\0';
	r->tls_done = r->rc->tls != CONF_TLS_STARTTLS;
	r->auth_ok = r->ehlo_seen = false;
	if ((r->curl = r->api->easy_init()) == NULL) {
		r->step = RELAY_STEP_CONFIG;
		snprintf(err, len, "cannot initialise libcurl");
		return -1;
	}
	relay_url(r->rc, &url);
	relay_setopts(r, buf_str(&url));
	buf_free(&url);
	if (relay_setauth(r, force, err, len) < 0)
		return -1;
	log_verbose("connecting to %s port %u", r->rc->host, r->rc->port);
	if ((rc = r->api->easy_perform(r->curl)) != CURLE_OK) {
		relay_why(r, rc, err, len);
		return -1;
	}
	if (r->rc->auth && !r->auth_ok) {
		r->step = RELAY_STEP_AUTH;
		snprintf(err, len, "relay %s port %u: did not offer AUTH after"
			 " TLS; nothing was sent", r->rc->host, r->rc->port);
		return -1;
	}
	return 0;
}

/* relay_drop - forget a failed connect phase's handle */
static void relay_drop(struct relay *r)
{
	if (r->curl)
		r->api->easy_cleanup(r->curl);
	r->curl = NULL;
	if (r->connect_to)
		r->api->slist_free_all(r->connect_to);
	r->connect_to = NULL;
	r->sock = CURL_SOCKET_BAD;
}

/* relay_start - connect, TLS, AUTH; 0 when ready for MAIL. An OAuth2
 * token the relay refuses is refreshed once */
static int relay_start(struct relay *r, const struct conf_relay *rc,
		       int dirfd, struct relay_info *info, char *err,
		       size_t len)
{
	int rv;

	memset(r, 0, sizeof(*r));
	r->rc = rc;
	r->info = info;
	r->dirfd = dirfd;
	r->sock = CURL_SOCKET_BAD;
	buf_init(&r->in, RELAY_IN_MAX);
	buf_init(&r->last.text, SMTP_TEXT_MAX);
	buf_init(&r->ehlo, SMTP_TEXT_MAX);
	if ((r->api = curl_api(err, len)) == NULL) {
		r->step = RELAY_STEP_CONFIG;
		goto fail;
	}
	rv = relay_connect(r, false, err, len);
	if (rv < 0 && r->step == RELAY_STEP_AUTH && rc->oauth2_token_url) {
		log_verbose("the relay refused the access token; refreshing");
		relay_drop(r);
		rv = relay_connect(r, true, err, len);
	}
	if (rv < 0)
		goto fail;
	if (r->api->easy_getinfo(r->curl, CURLINFO_ACTIVESOCKET, &r->sock) !=
	    CURLE_OK || r->sock == CURL_SOCKET_BAD) {
		r->step = RELAY_STEP_CONNECT;
		snprintf(err, len, "relay %s: no socket", rc->host);
		goto fail;
	}
	return 0;
fail:
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

/* relay_wait - poll the socket until ready or the deadline passes */
static int relay_wait(struct relay *r, short events, time_t deadline)
{
	struct pollfd p = { .fd = r->sock, .events = events };
	time_t now = time(NULL);
	int n;

	if (now >= deadline)
		return -1;
	do
		n = poll(&p, 1, (int)(deadline - now) * 1000);
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : -1;
}

/* relay_write - send everything, or fail and mark the session broken */
static int relay_write(struct relay *r, const char *p, size_t n)
{
	time_t deadline = time(NULL) + r->rc->timeout;

	while (n) {
		size_t k = 0;
		CURLcode rc = r->api->easy_send(r->curl, p, n, &k);

		if (rc == CURLE_AGAIN) {
			if (relay_wait(r, POLLOUT, deadline) < 0)
				goto broken;
			continue;
		}
		if (rc != CURLE_OK)
			goto broken;
		p += k;
		n -= k;
	}
	return 0;
broken:
	r->broken = true;
	return -1;
}

/* relay_fill - receive more reply bytes */
static int relay_fill(struct relay *r, time_t deadline)
{
	char chunk[16384];

	if (r->in_pos) {
		/* in_pos grows only past bytes found in in.data: not NULL */
		/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
		memmove(r->in.data, r->in.data + r->in_pos,
			r->in.len - r->in_pos);
		r->in.len -= r->in_pos;
		r->in_pos = 0;
	}
	for (;;) {
		size_t n = 0;
		CURLcode rc = r->api->easy_recv(r->curl, chunk, sizeof(chunk),
					     &n);

		if (rc == CURLE_AGAIN) {
			if (relay_wait(r, POLLIN, deadline) < 0)
				return -1;
			continue;
		}
		if (rc != CURLE_OK || n == 0)
			return -1;
		relay_sockopt(NULL, r->sock, CURLSOCKTYPE_IPCXN);
		return buf_append(&r->in, chunk, n);
	}
}

/* relay_reply - read one complete reply within timeout seconds */
static int relay_reply(struct relay *r, long timeout, struct smtp_reply *rep)
{
	time_t deadline = time(NULL) + timeout;

	smtp_reply_reset(rep);
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
	}
	if (rep->code == 421)
		r->broken = true;
	return 0;
broken:
	r->broken = true;
	return -1;
}


/*
 * The transaction. Commands are numbered: 0 is MAIL, 1..n the RCPTs of
 * the pending recipients, n+1 DATA. With PIPELINING up to TXN_WINDOW
 * commands go out in one write before their replies are read (bounded,
 * so a huge recipient list cannot deadlock against a server that stops
 * reading while its replies are unread); without it, one at a time.
 */
#define TXN_WINDOW 100

struct txn {
	struct relay *r;
	struct spool_msg *m;
	size_t *idx;		/* indexes of the pending recipients */
	bool *ok;		/* RCPT accepted, per idx */
	size_t n;
	size_t accepted;
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

/* txn_envelope - MAIL, RCPTs and DATA with their replies; -1 on I/O */
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
		if ((rc = relay_write(r, out.data, out.len)) < 0)
			break;
		buf_reset(&out);
		while (answered < sent && rc == 0) {
			rc = relay_reply(r, r->rc->timeout, &t->tmp);
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
	struct buf wire = BUF_INIT(8 * SPOOL_DKIM_SLOT);
	int rc;

	for (size_t i = 0; i < t->m->dkim.n; i++) {
		dkim_unfold_tabs(t->m->dkim.v[i], &wire);
		buf_puts(&wire, "\r\n");
	}
	rc = wire.len ? relay_write(t->r, wire.data, wire.len) : 0;
	buf_free(&wire);
	return rc;
}

/* txn_body - the message, dot-stuffed, then the final dot */
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
		o = smtp_stuff(in, (size_t)n, out, &bol);
		if (relay_write(t->r, out, o) < 0)
			return -1;
		off += n;
	}
	log_verbose(">>> (%lld bytes of message)", (long long)t->m->data_len);
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

	if (r->curl && !r->broken && r->sock != CURL_SOCKET_BAD) {
		buf_init(&rep.text, SMTP_TEXT_MAX);
		log_verbose(">>> QUIT");
		if (relay_write(r, "QUIT\r\n", 6) == 0)
			relay_reply(r, 10, &rep);
		smtp_reply_free(&rep);
	}
	if (r->api)
		relay_drop(r);
	buf_free(&r->in);
	buf_free(&r->ehlo);
	smtp_reply_free(&r->last);
}
