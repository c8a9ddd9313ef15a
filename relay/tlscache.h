/*
 * NAME
 *	tlscache - TLS sessions kept for the next connection to a relay
 * SYNOPSIS
 *	#include "relay/tlscache.h"
 *
 *	SSL_SESSION **slot = tlscache_slot(rc, spool_dirfd);
 *	conn_tls(&c, rc, deadline, slot, ...);	// offers *slot, updates it
 *	tlscache_save(rc, spool_dirfd);		// when the session changed
 *
 *	SSL_SESSION *s = tlscache_parse(text, key, time(NULL));
 *	tlscache_pem(s, strip, bio);
 * DESCRIPTION
 *	A resumed TLS session skips the relay's certificate, its signature
 *	and our verification of the chain: the dearest part of a delivery
 *	on loopback or a LAN. The newest session each relay issued is kept
 *	in memory for the process's later connections (a flush), and in
 *	the spool directory as tls-NAME (0600, PEM) for later processes.
 *
 *	The file's first line binds the session to the settings it was
 *	verified under (host, address, port, TLS mode and minimum version,
 *	trust store, and the ca_file's inode, size and modification time,
 *	pins, client certificate), as a SHA-256: a session
 *	made under other settings is never offered. A session made with a
 *	client certificate stays in memory only, so the file never carries
 *	a client identity. The file is a cache: written through a
 *	temporary file and rename(2) without fsync, and whatever cannot be
 *	parsed, or has expired, is ignored. It holds the session without
 *	the relay's certificate unless pins are set: resumption does not
 *	need it, a pin is checked against it on every connection, and
 *	decoding its key is most of what reading the file would cost.
 *
 *	tlscache_parse() is that reading of a file's text (NUL-terminated):
 *	the session, if the first line is "outbox-tls-session-1 KEY" for
 *	this key (64 hex digits) and the PEM after it holds a session that
 *	can be resumed, began at or before now and has not expired; NULL
 *	otherwise. The caller frees it (SSL_SESSION_free).
 *
 *	tlscache_pem() appends the session's PEM, as the file holds it
 *	after its first line, to a memory BIO: with strip, without the
 *	relay's certificate (tlscache_strip_peer() takes the [3] item out
 *	of the session's DER; 0 if the DER is not laid out as expected,
 *	and then the certificate stays). Both are exported for the fuzzing
 *	harness (fuzz/fuzz_cache.c).
 * DIAGNOSTICS
 *	None: without a usable session the handshake is simply a full one.
 */
#ifndef OUTBOX_TLSCACHE_H
#define OUTBOX_TLSCACHE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf/conf.h"

SSL_SESSION **tlscache_slot(const struct conf_relay *, int dirfd);
void tlscache_save(const struct conf_relay *, int dirfd);
SSL_SESSION *tlscache_parse(const char *text, const char *key, time_t now);
int tlscache_pem(SSL_SESSION *, bool strip, BIO *);
size_t tlscache_strip_peer(unsigned char *der, size_t n);

#endif
