/*
 * NAME
 *	header - the header block of a message being submitted
 * DESCRIPTION
 *	A header is kept as its exact text (folded lines joined by CRLF,
 *	without the final CRLF), so what outbox does not change reaches the
 *	relay byte for byte. The whole block is bounded (HEADER_BLOCK_MAX).
 */
#ifndef OUTBOX_HEADER_H
#define OUTBOX_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#define HEADER_BLOCK_MAX (1024 * 1024)

struct header {
	char *text;
	size_t len;
	size_t namelen;
};

struct headers {
	struct header *v;
	size_t n;
	size_t cap;
	size_t bytes;	/* total text, for the bound */
};

size_t header_name_len(const char *line, size_t len);
int headers_add(struct headers *, const char *line, size_t len);
int headers_fold(struct headers *, const char *line, size_t len);
bool header_is(const struct header *, const char *name);
const char *header_value(const struct header *, size_t *len);
struct header *headers_find(struct headers *, const char *name);
bool headers_have_prefix(const struct headers *, const char *prefix);
void headers_remove(struct headers *, const char *name);
void headers_free(struct headers *);

#endif
