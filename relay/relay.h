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
 *	libcurl does what it is best at: resolving, connecting, STARTTLS or
 *	implicit TLS with certificate and host name verification, and SASL
 *	authentication. It stops there (CURLOPT_CONNECT_ONLY) and this
 *	module drives MAIL, RCPT, DATA, RSET and QUIT itself over
 *	curl_easy_send/recv. Why: libcurl 7.88's own SMTP transfer hides
 *	per-recipient replies, cannot send DSN or BODY parameters, does not
 *	pipeline, truncates dot-stuffed uploads when told their size, and
 *	passes CR/LF in addresses through raw (shared research,
 *	libcurl-smtp.md). Owning the transaction removes all of that and
 *	lets one connection carry many messages.
 *
 *	libcurl also sends mail unauthenticated when the server offers no
 *	AUTH; relay_open() therefore watches every reply line of the
 *	connect phase and refuses to go on unless, after TLS, the server
 *	offered AUTH and answered 235.
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

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "queue/spool.h"
#include "relay/smtp.h"

struct curl_api;

/* how far relay_open() got: what failed */
enum relay_step {
	RELAY_STEP_NONE,
	RELAY_STEP_CONFIG,		/* libcurl missing */
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
	const struct curl_api *api;	/* libcurl, loaded on first use */
	CURL *curl;
	struct curl_slist *connect_to;	/* [relay] address */
	curl_socket_t sock;
	struct smtp_caps caps;		/* from the EHLO after TLS */
	bool tls_done;			/* header callback: TLS is up */
	bool auth_ok;			/* header callback: 235 seen */
	bool ehlo_seen;		/* an EHLO reply has been seen */
	bool broken;			/* I/O failed: do not reuse */
	unsigned sent;			/* transactions on this connection */
	bool reauth;			/* OAuth2 refresh token refused */
	enum relay_step step;		/* what failed in relay_open() */
	char mech[32];			/* the SASL mechanism used */
	struct buf ehlo;		/* the last EHLO reply's lines */
	struct smtp_reply last;		/* last reply of the connect phase */
	struct buf in;			/* received, not yet consumed */
	size_t in_pos;
	char errbuf[CURL_ERROR_SIZE];
};

enum relay_result { RELAY_DONE, RELAY_STALE };

int relay_open(struct relay *, const struct conf_relay *, int dirfd,
	       char *err, size_t len);
int relay_probe(const struct conf_relay *, int dirfd, struct relay_info *,
		char *err, size_t len);
void tls_describe(const struct curl_api *, CURL *, struct relay_info *);
enum relay_result relay_send(struct relay *, struct spool_msg *);
void relay_close(struct relay *);

#endif
