/*
 * NAME
 *	sys - facts about the calling user and this host
 * DESCRIPTION
 *	Looked up once and cached. The user comes from the passwd entry of
 *	the real uid, never from $USER or getlogin(): PHP-FPM and cron run
 *	with a cleared or foreign environment. sys_home() prefers $HOME and
 *	falls back to the passwd entry.
 *
 *	sys_now() is the queue's clock: time(2) plus OUTBOX_TIME_OFFSET
 *	seconds when that variable is set. It is a test hook (documented in
 *	outbox(8)) that moves the clock for expiry and backoff decisions.
 */
#ifndef OUTBOX_SYS_H
#define OUTBOX_SYS_H

#include <time.h>

const char *sys_login(void);
const char *sys_fullname(void);
const char *sys_home(void);
const char *sys_fqdn(void);
time_t sys_now(void);

#endif
