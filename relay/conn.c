/*
 * NAME
 *	conn - a relay connection's bytes, in clear or through TLS
 * DESCRIPTION
 *	See conn.h. One SSL_CTX per connection: its trust settings come
 *	from one relay's configuration and nothing else shares it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay/conn.h"
#include "relay/net.h"
#include "relay/relay.h"
#include "util/ossl.h"
#include "util/buf.h"

/* conn_error - OpenSSL's reason for the last failure, or a fallback */
static const char *conn_error(const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	return why ? why : fallback;
}

/* conn_new_session - OpenSSL's callback: keep a copy of the newest
 * session. A copy: the connection's own session object is marked not
 * resumable when the connection ends without close_notify (a relay
 * that answers 421 and hangs up), and the ticket is no worse for it */
static int conn_new_session(SSL *ssl, SSL_SESSION *s)
{
	SSL_SESSION **cache = SSL_get_app_data(ssl);
	SSL_SESSION *copy;

	if (cache == NULL || !SSL_SESSION_is_resumable(s) ||
	    (copy = SSL_SESSION_dup(s)) == NULL)
		return 0;
	SSL_SESSION_free(*cache);
	*cache = copy;
	return 0;		/* s stays OpenSSL's */
}

/* conn_verify - OpenSSL's own chain check, with ca_file read into the
 * store first: a resumed session is never verified again, so it never
 * pays for parsing the file */
static int conn_verify(X509_STORE_CTX *x, void *arg)
{
	struct conn *c = arg;

	if (X509_STORE_load_file(X509_STORE_CTX_get0_store(x), c->ca_file) !=
	    1) {
		c->ca_bad = true;
		X509_STORE_CTX_set_error(x, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	return X509_verify_cert(x);
}

/* conn_trust - the CA store: the configured one, else the system's */
static int conn_trust(struct conn *c, const struct conf_relay *rc, char *err,
		      size_t len)
{
	const char *dir;

	if (rc->ca_file && access(rc->ca_file, R_OK) < 0) {
		snprintf(err, len, "cannot load ca_file %s: %s", rc->ca_file,
			 strerror(errno));
		return -1;
	}
	c->ca_file = rc->ca_file;
	if (rc->ca_file)
		SSL_CTX_set_cert_verify_callback(c->ctx, conn_verify, c);
	if (rc->ca_path && SSL_CTX_load_verify_locations(c->ctx, NULL,
							 rc->ca_path) != 1) {
		snprintf(err, len, "cannot load ca_path %s: %s", rc->ca_path,
			 conn_error("unreadable"));
		return -1;
	}
	if (rc->ca_file || rc->ca_path)
		return 0;
	/* the hashed directory is read lazily, one certificate per lookup;
	 * the bundle file only where there is no such directory */
	dir = getenv(X509_get_default_cert_dir_env());
	if (access(dir ? dir : X509_get_default_cert_dir(), X_OK) == 0 &&
	    SSL_CTX_set_default_verify_dir(c->ctx) == 1)
		return 0;
	if (SSL_CTX_set_default_verify_file(c->ctx) == 1)
		return 0;
	snprintf(err, len, "no system trust store (%s): set ca_file",
		 X509_get_default_cert_dir());
	return -1;
}

/* conn_client_cert - the certificate (and key) presented to the relay */
static int conn_client_cert(SSL_CTX *ctx, const struct conf_relay *rc,
			    char *err, size_t len)
{
	const char *key = rc->client_key ? rc->client_key : rc->client_cert;

	if (SSL_CTX_use_certificate_chain_file(ctx, rc->client_cert) == 1 &&
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
	    SSL_CTX_check_private_key(ctx) == 1)
		return 0;
	snprintf(err, len, "cannot use the client certificate %s: %s",
		 rc->client_cert, conn_error("unreadable"));
	return -1;
}

/* conn_prepare - the TLS context for this relay, made before it is
 * needed: building it (~2 ms of OpenSSL 3.0's algorithm fetching) can
 * overlap the wait for the relay's greeting */
int conn_prepare(struct conn *c, const struct conf_relay *rc, char *err,
		 size_t len)
{
	if (c->ctx)
		return 0;
	ERR_clear_error();
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, len, "cannot initialise TLS: %s",
			 conn_error("out of memory"));
		return -1;
	}
	SSL_CTX_set_min_proto_version(c->ctx, rc->tls_min == 13 ?
				      TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(c->ctx, conn_new_session);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_passwd_cb(c->ctx, ossl_no_passphrase);
	if (conn_trust(c, rc, err, len) < 0 ||
	    (rc->client_cert && conn_client_cert(c->ctx, rc, err, len) < 0)) {
		SSL_CTX_free(c->ctx);
		c->ctx = NULL;
		return -1;
	}
	return 0;
}

/* conn_name - SNI and the name (or address) the certificate must show */
static int conn_name(SSL *ssl, const char *host)
{
	char bare[256];
	size_t n = strlen(host);
	unsigned char ip[16];

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		snprintf(bare, sizeof(bare), "%.*s", (int)(n - 2), host + 1);
	else	/* a fully qualified "relay.example." is relay.example */
		snprintf(bare, sizeof(bare), "%.*s", (int)(n && host[n - 1] ==
						       '.' ? n - 1 : n), host);
	for (const char *p = bare; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return -2;	/* IDN: needs its xn-- form */
	if (inet_pton(AF_INET, bare, ip) == 1 ||
	    inet_pton(AF_INET6, bare, ip) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
						     bare) == 1 ? 0 : -1;
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set_tlsext_host_name(ssl, bare) != 1 ||
	    SSL_set1_host(ssl, bare) != 1)
		return -1;
	return 0;
}

/* conn_pinned - the peer's key is one of "A;B, C" (sha256// optional) */
static bool conn_pinned(SSL *ssl, const char *pins)
{
	char mine[64];
	const char *p;
	size_t n;

	if (tls_pin(ssl, mine, sizeof(mine)) < 0)
		return false;
	while ((p = conf_pin_next(&pins, &n)) != NULL)
		if (n == strlen(mine) && memcmp(p, mine, n) == 0)
			return true;
	return false;
}

/* conn_handshake - drive SSL_connect to the end or the deadline */
static int conn_handshake(struct conn *c, long long deadline_ms,
			  bool *timed_out)
{
	for (;;) {
		int rv = SSL_connect(c->ssl);
		int e = rv == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rv);

		if (e == SSL_ERROR_NONE)
			return 0;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return -1;
		if (net_wait(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN :
			     POLLOUT, deadline_ms) < 0) {
			*timed_out = true;
			return -1;
		}
		net_quickack(c->fd);
	}
}

/* conn_tls_why - the one line for a failed handshake */
static void conn_tls_why(struct conn *c, bool timed_out, bool *verify,
			 char *err, size_t len)
{
	long v = SSL_get_verify_result(c->ssl);

	if (c->ca_bad) {
		snprintf(err, len, "cannot load ca_file %s: %s", c->ca_file,
			 conn_error("no certificate in it"));
	} else if (v != X509_V_OK) {
		*verify = true;
		snprintf(err, len, "certificate verification failed: %s",
			 X509_verify_cert_error_string(v));
	} else if (timed_out) {
		snprintf(err, len, "TLS handshake timed out");
	} else {
		snprintf(err, len, "TLS handshake failed: %s",
			 conn_error("the relay closed the connection"));
	}
}

/* conn_tls - TLS on c's socket, verified; see conn.h */
int conn_tls(struct conn *c, const struct conf_relay *rc,
	     long long deadline_ms, SSL_SESSION **cache, bool *verify,
	     char *err, size_t len)
{
	bool timed_out = false;
	int named = 0;

	*verify = false;
	if (conn_prepare(c, rc, err, len) < 0)
		return -1;
	ERR_clear_error();
	if ((c->ssl = SSL_new(c->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (named = conn_name(c->ssl, rc->host)) < 0) {
		if (named == -2)
			snprintf(err, len, "host %s: write an international "
				 "name in its ASCII (xn--) form", rc->host);
		else
			snprintf(err, len, "cannot initialise TLS: %s",
				 conn_error("out of memory"));
		return -1;
	}
	SSL_set_app_data(c->ssl, cache);
	if (cache && *cache)
		SSL_set_session(c->ssl, *cache);
	if (conn_handshake(c, deadline_ms, &timed_out) < 0) {
		conn_tls_why(c, timed_out, verify, err, len);
		return -1;
	}
	if (rc->pin_sha256 && !conn_pinned(c->ssl, rc->pin_sha256)) {
		*verify = true;
		if (cache) {	/* never offer what failed the pin */
			SSL_SESSION_free(*cache);
			*cache = NULL;
		}
		snprintf(err, len, "the certificate's public key does not "
			 "match pin_sha256");
		return -1;
	}
	return 0;
}

/* conn_resumed - the handshake resumed an earlier session */
bool conn_resumed(const struct conn *c)
{
	return c->ssl && SSL_session_reused(c->ssl);
}

/* conn_wait - wait for what OpenSSL (or the socket) asks for */
static int conn_wait(struct conn *c, int rv, bool out, long long deadline_ms)
{
	int e;

	if (c->ssl == NULL)
		e = errno == EAGAIN || errno == EINTR ? (out ?
		    SSL_ERROR_WANT_WRITE : SSL_ERROR_WANT_READ) :
		    SSL_ERROR_SYSCALL;
	else
		e = SSL_get_error(c->ssl, rv);
	if (e == SSL_ERROR_WANT_READ)
		return net_wait(c->fd, POLLIN, deadline_ms);
	if (e == SSL_ERROR_WANT_WRITE)
		return net_wait(c->fd, POLLOUT, deadline_ms);
	return -1;
}

/* conn_send - all n bytes, before the deadline */
int conn_send(struct conn *c, const void *p, size_t n, long long deadline_ms)
{
	const char *b = p;

	while (n) {
		size_t k = 0;
		int rv;

		if (c->ssl) {
			ERR_clear_error();
			rv = SSL_write_ex(c->ssl, b, n, &k);
		} else {
			ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);

			rv = w > 0;
			k = w > 0 ? (size_t)w : 0;
		}
		if (rv > 0) {
			b += k;
			n -= k;
		} else if (conn_wait(c, rv, true, deadline_ms) < 0) {
			return -1;
		}
	}
	return 0;
}

/* conn_recv - some bytes, waiting until the deadline for them */
ssize_t conn_recv(struct conn *c, void *p, size_t n, long long deadline_ms)
{
	for (;;) {
		size_t k = 0;
		int rv;

		if (c->ssl) {
			ERR_clear_error();
			rv = SSL_read_ex(c->ssl, p, n, &k);
		} else {
			ssize_t r = recv(c->fd, p, n, 0);

			if (r == 0)
				return -1;	/* closed */
			rv = r > 0;
			k = r > 0 ? (size_t)r : 0;
		}
		if (rv > 0) {
			net_quickack(c->fd);
			return (ssize_t)k;
		}
		if (conn_wait(c, rv, false, deadline_ms) < 0)
			return -1;
	}
}

/* conn_close - free the TLS state and close the socket. No close_notify:
 * after QUIT and its 221 there is nothing left to protect, and the
 * cached session is a copy that OpenSSL cannot spoil */
void conn_close(struct conn *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	c->ssl = NULL;
	c->ctx = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
