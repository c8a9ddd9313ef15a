/*
 * NAME
 *	conn - a relay connection's bytes, in clear or through TLS
 * SYNOPSIS
 *	#include "relay/conn.h"
 *
 *	struct conn c = { .fd = fd };
 *	if (conn_tls(&c, rc, deadline, &verify, err, sizeof(err)) == 0)
 *		conn_send(&c, "EHLO a\r\n", 8, deadline);
 *	conn_close(&c);
 * DESCRIPTION
 *	conn_tls() starts TLS on a connected socket with OpenSSL: at least
 *	tls_min_version, the peer verified against ca_file/ca_path (they
 *	replace the system store) or the system's hashed certificate
 *	directory, the host name checked (or the address, for a relay
 *	named by an IP literal), the public key compared with pin_sha256
 *	when pins are set, and the client certificate presented when one
 *	is configured. There is no way to turn verification off.
 *
 *	conn_prepare() builds the TLS context early (conn_tls() does it if
 *	it was not), so that its cost overlaps the relay's greeting; a
 *	ca_file is parsed only when a full handshake needs to verify the
 *	chain.
 *
 *	A session the relay issued earlier (a TLS 1.3 ticket, or a 1.2
 *	session) can be offered for resumption: conn_tls() takes it from
 *	*cache and leaves the newest one there. A resumed session skips
 *	the certificate exchange: the caller must offer only a session made
 *	under the same host and trust settings (tlscache.c keys them so).
 *	A session whose certificate failed the pins is dropped.
 *
 *	conn_send() writes everything before the deadline; conn_recv()
 *	returns what is there, waiting until the deadline for something.
 *	The socket is non-blocking; TLS records are read and written
 *	through it, retrying on what OpenSSL asks to wait for.
 * DIAGNOSTICS
 *	conn_tls() returns -1 with a one-line reason; *verify says that
 *	the certificate (or the pin) was the reason. conn_send() and
 *	conn_recv() return -1 on an error, a closed connection or the
 *	deadline.
 */
#ifndef OUTBOX_CONN_H
#define OUTBOX_CONN_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf/conf.h"

struct conn {
	int fd;			/* -1: closed */
	SSL_CTX *ctx;
	SSL *ssl;		/* NULL: in clear */
	const char *ca_file;	/* read at the first full handshake */
	bool ca_bad;		/* and it could not be read */
};

int conn_prepare(struct conn *, const struct conf_relay *, char *err,
		 size_t len);
int conn_tls(struct conn *, const struct conf_relay *, long long deadline_ms,
	     SSL_SESSION **cache, bool *verify, char *err, size_t len);
int conn_send(struct conn *, const void *, size_t, long long deadline_ms);
ssize_t conn_recv(struct conn *, void *, size_t, long long deadline_ms);
bool conn_resumed(const struct conn *);
void conn_close(struct conn *);

#endif
