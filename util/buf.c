/*
 * NAME
 *	buf - bounded growable byte buffers
 * DESCRIPTION
 *	See buf.h. Capacity doubles, clamped to max + 1 (the NUL).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "util/buf.h"
#include "util/crash.h"
#include "util/log.h"

/* xmalloc - malloc or die */
void *xmalloc(size_t n)
{
	void *p = crash_alloc_fail() ? NULL : malloc(n ? n : 1);

	if (p == NULL)
		log_die(EX_OSERR, "out of memory (%zu bytes)", n);
	return p;
}

/* xcalloc - calloc or die */
void *xcalloc(size_t n, size_t size)
{
	void *p = crash_alloc_fail() ? NULL : calloc(n ? n : 1,
							 size ? size : 1);

	if (p == NULL)
		log_die(EX_OSERR, "out of memory (%zu x %zu bytes)", n, size);
	return p;
}

/* xrealloc - realloc or die */
void *xrealloc(void *old, size_t n)
{
	void *p = crash_alloc_fail() ? NULL : realloc(old, n ? n : 1);

	if (p == NULL)
		log_die(EX_OSERR, "out of memory (%zu bytes)", n);
	return p;
}

/* xstrdup - strdup or die */
char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* xstrndup - copy at most n bytes of s, NUL-terminated */
char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* buf_init - empty buffer that may grow to max bytes */
void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* buf_free - release the storage; the buffer is empty and reusable */
void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* buf_reset - forget the contents, keep the storage */
void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* buf_reserve - make room for extra more bytes plus the NUL */
static int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;

	if (extra > b->max - b->len)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

/* buf_append - add n bytes; -1 when that would pass the maximum */
int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* buf_puts - add a C string */
int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

/* buf_putc - add one byte */
int buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

/* buf_vprintf - add formatted text */
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

/* buf_printf - add formatted text */
int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

/* buf_str - the contents as a C string, "" when empty */
const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

/* buf_steal - hand the storage to the caller (never NULL) */
char *buf_steal(struct buf *b)
{
	char *p = b->data ? b->data : xstrdup("");

	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
