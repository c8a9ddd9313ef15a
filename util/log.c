/*
 * NAME
 *	log - diagnostics: stderr for the caller, syslog for the record
 * DESCRIPTION
 *	See log.h. syslog is opened lazily with the mail facility, so the
 *	silent success path never touches /dev/log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "util/log.h"

static const char *log_prog = "sendmail";
static bool log_verbose_on;
static bool log_stderr_on = true;
static bool log_syslog_open;
static bool log_notes_to_stderr;
static void (*log_cleanup)(void);
static void (*log_die_hook)(int, const char *);

/* log_init - name used as the message prefix and syslog ident */
void log_init(const char *progname)
{
	log_prog = progname;
}

/* log_set_verbose - -v: tell the caller what happens */
void log_set_verbose(bool on)
{
	log_verbose_on = on;
}

/* log_is_verbose - is -v in force */
bool log_is_verbose(void)
{
	return log_verbose_on;
}

/* log_set_stderr - off during -bs, where stderr must stay silent */
void log_set_stderr(bool on)
{
	log_stderr_on = on;
}

/* log_set_foreground - a long-running runner: notes go to stderr too
 * when nothing listens on /dev/log */
void log_set_foreground(bool on)
{
	log_notes_to_stderr = on && access("/dev/log", W_OK) != 0;
}

/* log_set_cleanup - run fn before log_die exits; NULL disarms */
void log_set_cleanup(void (*fn)(void))
{
	log_cleanup = fn;
}

/* log_set_die_hook - also tell a -bs client before log_die exits */
void log_set_die_hook(void (*fn)(int, const char *))
{
	log_die_hook = fn;
}

/* log_emit - format once, send to stderr and/or syslog */
static void log_emit(int prio, bool to_stderr, bool to_syslog,
		     const char *fmt, va_list ap) LOG_FMT(4, 0);

static void log_emit(int prio, bool to_stderr, bool to_syslog,
		     const char *fmt, va_list ap)
{
	char text[2048];

	vsnprintf(text, sizeof(text), fmt, ap);
	/* one message, one line: caller-supplied text cannot forge more */
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (prio == LOG_ERR && log_die_hook)
		log_die_hook(0, text);
	if (to_stderr && log_stderr_on)
		fprintf(stderr, "%s: %s\n", log_prog, text);
	if (to_syslog) {
		if (!log_syslog_open) {
			openlog("outbox", LOG_PID, LOG_MAIL);
			log_syslog_open = true;
		}
		syslog(prio, "%s", text);
	}
}

/* log_die - report, clean up, exit with a sysexits code */
void log_die(int ex, const char *fmt, ...)
{
	va_list ap;
	void (*fn)(void) = log_cleanup;

	va_start(ap, fmt);
	log_emit(LOG_ERR, true, true, fmt, ap);
	va_end(ap);
	log_cleanup = NULL;
	if (fn)
		fn();
	exit(ex);
}

/* log_warn - tell the caller and the log */
void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, true, true, fmt, ap);
	va_end(ap);
}

/* log_note - tell the log, and the caller under -v */
void log_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_INFO, log_verbose_on || log_notes_to_stderr, true, fmt,
		 ap);
	va_end(ap);
}

/* log_tty - tell a person at a terminal; programs stay undisturbed */
void log_tty(const char *fmt, ...)
{
	va_list ap;

	if (log_verbose_on || !isatty(STDERR_FILENO))
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, true, false, fmt, ap);
	va_end(ap);
}

/* log_verbose - tell the caller under -v only */
void log_verbose(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose_on)
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, true, false, fmt, ap);
	va_end(ap);
}
