/*
 * NAME
 *	dkim - DKIM signatures (RFC 6376, RFC 8463) made at submission
 * SYNOPSIS
 *	#include "message/dkim.h"
 * DESCRIPTION
 *	dkim_select() loads the keys configured for the message's From
 *	domain. Each signer hashes the body while it is spooled
 *	(dkim_body, fed the CRLF body in pieces; dkim_body_reset starts
 *	over when the body is re-encoded), then dkim_sign() hashes the
 *	final header fields and writes one DKIM-Signature field.
 *
 *	The field is written as one line in which each TAB stands for a
 *	fold (CRLF TAB): that is how the spool keeps it and how the relay
 *	module sends it (dkim_unfold_tabs gives the wire form). Signing
 *	covers exactly that wire form.
 *
 *	Keys: RSA of at least 2048 bits or Ed25519, in PEM, or Ed25519 as
 *	the base64 raw seed that dknewkey writes. A key file readable by
 *	everyone is refused, like any secret.
 * DIAGNOSTICS
 *	dkim_select() and dkim_record() return -1 with err filled in: a
 *	configuration problem, never a silent unsigned message.
 */
#ifndef OUTBOX_DKIM_H
#define OUTBOX_DKIM_H

#include <stddef.h>

#include "conf/conf.h"
#include "message/header.h"
#include "util/buf.h"

#define DKIM_MAX_SIGS 8

struct dkim_signer;

int dkim_select(const struct conf *, const char *from_domain,
		struct dkim_signer **out, size_t *n, char *err, size_t len);
void dkim_body(struct dkim_signer *, const char *p, size_t n);
void dkim_body_reset(struct dkim_signer *);
int dkim_sign(struct dkim_signer *, const struct headers *, struct buf *);
void dkim_free(struct dkim_signer *);
int dkim_record(const struct conf_dkim *, struct buf *, char *err,
		size_t len);
void dkim_unfold_tabs(const char *stored, struct buf *wire);

#endif
