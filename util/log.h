/*
 * NAME
 *	log - diagnostics: stderr for the caller, syslog for the record
 * SYNOPSIS
 *	#include "util/log.h"
 * DESCRIPTION
 *	One family for every message outbox prints. log_die() ends the
 *	program with a sysexits(3) code after running the armed cleanup
 *	(which removes a half-written spool file, see queue/spool.c).
 *	log_warn() tells the caller and the log; log_note() only the log
 *	(and the caller under -v); log_verbose() only the caller under -v;
 *	log_tty() the caller when stderr is a terminal (a person, not a
 *	program, is waiting) and -v is not already telling it.
 *	A foreground queue runner (log_set_foreground) also writes its notes
 *	to stderr when there is no syslog to take them (no /dev/log, as in
 *	most containers). In -bs mode stderr is silenced: the SMTP
 *	dialogue is the only channel to the client.
 *
 *	Nothing that holds a secret may be passed to these functions.
 */
#ifndef OUTBOX_LOG_H
#define OUTBOX_LOG_H

#include <stdbool.h>

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *progname);
void log_set_verbose(bool);
bool log_is_verbose(void);
void log_set_stderr(bool);
void log_set_foreground(bool);
void log_set_cleanup(void (*)(void));
void log_set_die_hook(void (*)(int ex, const char *text));

_Noreturn void log_die(int ex, const char *fmt, ...) LOG_FMT(2, 3);
void log_warn(const char *fmt, ...) LOG_FMT(1, 2);
void log_note(const char *fmt, ...) LOG_FMT(1, 2);
void log_verbose(const char *fmt, ...) LOG_FMT(1, 2);
void log_tty(const char *fmt, ...) LOG_FMT(1, 2);

#endif
