/*
 * NAME
 *	ossl - OpenSSL, loaded on first use (util/ossl.c), and what its
 *	callers share
 * SYNOPSIS
 *	#include "util/ossl.h"
 * DESCRIPTION
 *	The OpenSSL functions themselves need no header of outbox's: they
 *	are called by their own names, declared by OpenSSL's headers and
 *	defined in util/ossl.c.
 *
 *	ossl_warm() starts loading and initialising OpenSSL in a thread,
 *	for a TLS connection to come; OpenSSL's first use, fork() and exit()
 *	wait for it on their own (util/ossl.c says how). ossl_warming() says
 *	whether it is still at work, so that a caller can put off its first
 *	OpenSSL call rather than wait.
 *
 *	ossl_no_passphrase() is a pem_password_cb that supplies no
 *	passphrase, so that an encrypted key (a DKIM key, a client_key)
 *	fails with an error instead of prompting on the terminal.
 */
#ifndef OUTBOX_OSSL_H
#define OUTBOX_OSSL_H

#include <stdbool.h>

void ossl_warm(void);
bool ossl_warming(void);
int ossl_no_passphrase(char *buf, int size, int rw, void *arg);

#endif
