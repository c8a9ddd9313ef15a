/*
 * NAME
 *	sasl - the client side of SMTP AUTH (RFC 4954): which mechanism,
 *	and what to send
 * SYNOPSIS
 *	#include "relay/sasl.h"
 *
 *	unsigned mech = sasl_pick(rc->auth, ehlo_lines, secret != NULL);
 *	sasl_start(&cred, mech, &line);		// "AUTH PLAIN AGFs..."
 *	sasl_step(&cred, mech, step, challenge, &line);	// after a 334
 * DESCRIPTION
 *	sasl_pick() chooses among the mechanisms both allowed by the
 *	configuration (AUTH_* bits) and offered in the EHLO reply (its
 *	"AUTH ..." or "AUTH=..." lines): EXTERNAL when it is the one
 *	allowed; else CRAM-MD5, OAUTHBEARER, XOAUTH2, PLAIN, LOGIN, in
 *	that order. It returns 0 when none fits.
 *
 *	sasl_start() makes the AUTH command, with the initial response
 *	where the mechanism has one (RFC 4954 4: PLAIN, XOAUTH2,
 *	OAUTHBEARER, EXTERNAL). sasl_step() answers a 334 challenge
 *	(base64 in the reply text): LOGIN's user name and password,
 *	CRAM-MD5's keyed digest (RFC 2195), and for a bearer token the
 *	relay refuses, the reply that ends the exchange (an empty line
 *	for XOAUTH2, ^A for OAUTHBEARER, RFC 7628 3.2.3) so the relay
 *	answers 535.
 *
 *	Both write into buffers the caller wipes: they hold credentials.
 * DIAGNOSTICS
 *	sasl_start() and sasl_step() return -1 when the buffer's bound is
 *	reached or the challenge is not base64.
 */
#ifndef OUTBOX_SASL_H
#define OUTBOX_SASL_H

#include <stddef.h>

#include "util/buf.h"

struct sasl_cred {
	const char *user;	/* NULL: none */
	const char *secret;	/* password or bearer token; NULL: none */
	const char *host;	/* the relay, for OAUTHBEARER */
	unsigned port;
};

unsigned sasl_pick(unsigned allowed, const char *ehlo_lines, int have_secret);
int sasl_start(const struct sasl_cred *, unsigned mech, struct buf *out);
int sasl_step(const struct sasl_cred *, unsigned mech, unsigned step,
	      const char *challenge, struct buf *out);
int sasl_offered(const char *ehlo_lines, const char *mech);

#endif
