/*
 * NAME
 *	relay - one SMTP session with the configured smarthost
 * SYNOPSIS
 *	#include "relay/relay.h"
 *
 *	struct relay r;
 *	if (relay_open(&r, conf_relay, spool_dirfd, err, sizeof(err)) == 0) {
 *		relay_send(&r, msg);	// as many messages as needed
 *		relay_close(&r);
 *	}
 * DESCRIPTION
 *	outbox speaks SMTP to the relay itself, over OpenSSL: relay/net.c
 *	connects (directly or through SOCKS5), relay/conn.c carries the
 *	bytes in clear or through verified TLS, relay/sasl.c says what
 *	AUTH sends, and this module drives the session: greeting, EHLO,
 *	STARTTLS, EHLO again, AUTH, then MAIL, RCPT, DATA, RSET and QUIT.
 *	Owning every step is what lets outbox pipeline, send DSN and BODY
 *	parameters, keep each recipient's reply, carry many messages on
 *	one connection, and refuse to go on in any weaker state than the
 *	configuration asks for. (libcurl did the connect phase once; its
 *	thirty-odd libraries cost every delivery ~5 ms and ~6 MB before a
 *	byte was sent. It is still used for OAuth2's HTTPS token requests,
 *	loaded only then.)
 *
 *	The connect phase is strict: STARTTLS must be offered and must
 *	succeed, nothing may follow the 220 to STARTTLS before the
 *	handshake (CVE-2021-22947's kind of injection), the EHLO reply
 *	from before TLS is forgotten, and when credentials are configured
 *	the relay must offer an allowed mechanism after TLS and answer
 *	235: outbox never sends mail unauthenticated because the relay
 *	did not ask. connect_timeout bounds the whole phase.
 *
 *	A TLS session the relay issued is kept in memory for the next
 *	connection of the same process (a flush's later connections
 *	resume it and skip the certificate exchange).
 *
 *	relay_send() records each recipient's outcome in the message
 *	(done, still pending with the reply, or failed with the reply).
 * DIAGNOSTICS
 *	relay_open() returns -1 with a one-line reason: the mail stays
 *	queued. relay_send() returns RELAY_STALE when a reused connection
 *	turned out to be closed before anything happened: reconnect and
 *	send again.
 */
#ifndef OUTBOX_RELAY_H
#define OUTBOX_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "queue/spool.h"
#include "relay/conn.h"
#include "relay/smtp.h"

/* how far relay_open() got: what failed */
enum relay_step {
	RELAY_STEP_NONE,
	RELAY_STEP_CONFIG,		/* TLS cannot be set up */
	RELAY_STEP_SECRET,		/* no password or token to send */
	RELAY_STEP_RESOLVE,		/* host name */
	RELAY_STEP_CONNECT,		/* TCP, greeting, timeouts */
	RELAY_STEP_TLS,			/* STARTTLS, handshake, certificate */
	RELAY_STEP_AUTH,		/* AUTH not offered or refused */
};

/* what relay_probe() found out, for the diagnostics command */
struct relay_info {
	char address[64];		/* connected to */
	long port;
	char tls_version[32];		/* empty: no TLS */
	char cipher[96];
	char subject[512];		/* the relay's certificate */
	char issuer[512];
	char expires[64];
	char pin[64];			/* base64 SHA-256 of its public key */
	char mech[32];			/* SASL mechanism used, if any */
	char caps[2048];		/* EHLO keywords after TLS, one line */
	bool authenticated;
	enum relay_step step;		/* what failed, if anything */
};

struct relay {
	const struct conf_relay *rc;
	struct relay_info *info;	/* relay_probe() only */
	int dirfd;			/* the spool: OAuth2 token cache */
	struct conn c;			/* the socket, and TLS once up */
	long long deadline;		/* of the connect phase, monotonic ms */
	struct smtp_caps caps;		/* from the EHLO after TLS */
	bool auth_ok;			/* the relay answered 235 */
	bool broken;			/* I/O failed: do not reuse */
	unsigned sent;			/* transactions on this connection */
	bool reauth;			/* OAuth2 refresh token refused */
	enum relay_step step;		/* what failed in relay_open() */
	char mech[32];			/* the SASL mechanism used */
	struct buf ehlo;		/* the last EHLO reply's lines */
	struct smtp_reply last;		/* last reply of the connect phase */
	struct buf in;			/* received, not yet consumed */
	size_t in_pos;
};

enum relay_result { RELAY_DONE, RELAY_STALE };

int relay_open(struct relay *, const struct conf_relay *, int dirfd,
	       char *err, size_t len);
int relay_probe(const struct conf_relay *, int dirfd, struct relay_info *,
		char *err, size_t len);
void tls_describe(SSL *, struct relay_info *);
int tls_pin(SSL *, char *out, size_t len);
enum relay_result relay_send(struct relay *, struct spool_msg *);
void relay_close(struct relay *);

#endif
