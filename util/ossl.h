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
 *	ossl_no_passphrase() is a pem_password_cb that supplies no
 *	passphrase, so that an encrypted key (a DKIM key, a client_key)
 *	fails with an error instead of prompting on the terminal.
 */
#ifndef OUTBOX_OSSL_H
#define OUTBOX_OSSL_H

int ossl_no_passphrase(char *buf, int size, int rw, void *arg);

#endif
