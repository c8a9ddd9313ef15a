/*
 * NAME
 *	relay - one SMTP session with the configured smarthost
 * SYNOPSIS
 *	#include "relay/relay.h"
 *
 *	struct relay r;
 *	if (relay_open(&r, conf, err, sizeof(err)) == 0) {
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

struct relay {
	const struct conf *conf;
	const struct curl_api *api;	/* libcurl, loaded on first use */
	CURL *curl;
	curl_socket_t sock;
	struct smtp_caps caps;		/* from the EHLO after TLS */
	bool tls_done;			/* header callback: TLS is up */
	bool auth_ok;			/* header callback: 235 seen */
	bool ehlo_seen;		/* an EHLO reply has been seen */
	bool broken;			/* I/O failed: do not reuse */
	unsigned sent;			/* transactions on this connection */
	struct smtp_reply last;		/* last reply of the connect phase */
	struct buf in;			/* received, not yet consumed */
	size_t in_pos;
	char errbuf[CURL_ERROR_SIZE];
};

enum relay_result { RELAY_DONE, RELAY_STALE };

int relay_open(struct relay *, const struct conf *, char *err, size_t len);
enum relay_result relay_send(struct relay *, struct spool_msg *);
void relay_close(struct relay *);

#endif
