/*
 * NAME
 *	header - the header block of a message being submitted
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "message/header.h"
#include "util/buf.h"

/* header_name_len - length of a valid "Name:" at the start, else 0 */
size_t header_name_len(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && line[i] > ' ' && line[i] < 0x7f && line[i] != ':')
		i++;
	if (i == 0)
		return 0;
	/* obsolete syntax allows blanks before the colon */
	for (size_t j = i; j < len; j++) {
		if (line[j] == ':')
			return i;
		if (line[j] != ' ' && line[j] != '\t')
			return 0;
	}
	return 0;
}

/* headers_add - append a new header line; -1 past the block limit */
int headers_add(struct headers *hs, const char *line, size_t len)
{
	struct header *h;

	if (hs->bytes > HEADER_BLOCK_MAX ||
	    len + 2 > HEADER_BLOCK_MAX - hs->bytes)
		return -1;
	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? hs->cap * 2 : 16;
		hs->v = xrealloc(hs->v, hs->cap * sizeof(*hs->v));
	}
	h = &hs->v[hs->n++];
	h->text = xstrndup(line, len);
	h->len = len;
	h->namelen = header_name_len(line, len);
	hs->bytes += len + 2;
	return 0;
}

/* headers_fold - a continuation line of the last header */
int headers_fold(struct headers *hs, const char *line, size_t len)
{
	struct header *h = &hs->v[hs->n - 1];

	if (hs->bytes > HEADER_BLOCK_MAX ||
	    len + 2 > HEADER_BLOCK_MAX - hs->bytes)
		return -1;
	h->text = xrealloc(h->text, h->len + len + 3);
	memcpy(h->text + h->len, "\r\n", 2);
	memcpy(h->text + h->len + 2, line, len);
	h->len += len + 2;
	h->text[h->len] = '\0';
	hs->bytes += len + 2;
	return 0;
}

/* header_is - does h have this field name (any case) */
bool header_is(const struct header *h, const char *name)
{
	return h->namelen == strlen(name) &&
	    strncasecmp(h->text, name, h->namelen) == 0;
}

/* header_value - the text after the colon */
const char *header_value(const struct header *h, size_t *len)
{
	const char *colon = memchr(h->text, ':', h->len);
	const char *v = colon ? colon + 1 : h->text + h->len;

	*len = (size_t)(h->text + h->len - v);
	return v;
}

/* headers_find - first header with this name, or NULL */
struct header *headers_find(struct headers *hs, const char *name)
{
	for (size_t i = 0; i < hs->n; i++)
		if (header_is(&hs->v[i], name))
			return &hs->v[i];
	return NULL;
}

/* headers_have_prefix - is there a field whose name starts with prefix */
bool headers_have_prefix(const struct headers *hs, const char *prefix)
{
	size_t n = strlen(prefix);

	for (size_t i = 0; i < hs->n; i++)
		if (hs->v[i].namelen >= n &&
		    strncasecmp(hs->v[i].text, prefix, n) == 0)
			return true;
	return false;
}

/* headers_remove - drop every header with this name */
void headers_remove(struct headers *hs, const char *name)
{
	size_t out = 0;

	for (size_t i = 0; i < hs->n; i++) {
		if (header_is(&hs->v[i], name)) {
			hs->bytes -= hs->v[i].len + 2;
			free(hs->v[i].text);
			continue;
		}
		hs->v[out++] = hs->v[i];
	}
	hs->n = out;
}

/* headers_free - release the block */
void headers_free(struct headers *hs)
{
	for (size_t i = 0; i < hs->n; i++)
		free(hs->v[i].text);
	free(hs->v);
	memset(hs, 0, sizeof(*hs));
}
