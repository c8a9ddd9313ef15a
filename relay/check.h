/*
 * NAME
 *	check - sendmail --check-relays: can each relay take mail now
 * SYNOPSIS
 *	#include "relay/check.h"
 *
 *	int relay_check(const struct conf *, int spool_dirfd);
 * DESCRIPTION
 *	See check.c: probes every relay as a delivery would, prints what
 *	it saw, and returns the sysexits code of the first failure.
 */
#ifndef OUTBOX_CHECK_H
#define OUTBOX_CHECK_H

#include "conf/conf.h"

int relay_check(const struct conf *, int dirfd);

#endif
