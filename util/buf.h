/*
 * NAME
 *	buf - bounded growable byte buffers
 * SYNOPSIS
 *	#include "util/buf.h"
 * DESCRIPTION
 *	A buf holds bytes plus a terminating NUL that is not counted in len,
 *	so text can be handed to C string functions. Every buffer has a
 *	maximum size chosen by its owner; growing past it fails with -1 and
 *	leaves the buffer unchanged, so untrusted input can never make the
 *	process grow without bound. Allocation failure aborts through
 *	log_die(EX_OSERR), see util/log.h: callers never see a NULL.
 */
#ifndef OUTBOX_BUF_H
#define OUTBOX_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;	/* NUL-terminated; NULL until the first append */
	size_t len;	/* bytes in use, excluding the NUL */
	size_t cap;	/* bytes allocated */
	size_t max;	/* largest len this buffer may ever reach */
};

#define BUF_INIT(maxlen) { NULL, 0, 0, (maxlen) }

void buf_init(struct buf *, size_t max);
void buf_free(struct buf *);
void buf_reset(struct buf *);
int buf_append(struct buf *, const void *, size_t);
int buf_puts(struct buf *, const char *);
int buf_putc(struct buf *, char);
int buf_printf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));
const char *buf_str(const struct buf *);
char *buf_steal(struct buf *);

/* Allocation helpers that never return NULL. */
void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);

#endif
