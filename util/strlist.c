/*
 * NAME
 *	strlist - a growable list of owned strings
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

#include "util/buf.h"
#include "util/strlist.h"

#define STRLIST_INDEX_FROM	16	/* entries before an index pays */

/* strlist_hash - FNV-1a of s, ignoring ASCII case */
static size_t strlist_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) *
		    1099511628211ULL;
	return (size_t)h;
}

/* strlist_index_put - enter position pos into the index */
static void strlist_index_put(struct strlist *l, size_t pos)
{
	size_t i = strlist_hash(l->v[pos]) & (l->icap - 1);

	while (l->index[i])
		i = (i + 1) & (l->icap - 1);
	l->index[i] = pos + 1;
}

/* strlist_index_build - (re)build the index, at most half full */
static void strlist_index_build(struct strlist *l)
{
	size_t cap = 64;

	while (cap < 4 * l->n)
		cap *= 2;
	free(l->index);
	l->index = xcalloc(cap, sizeof(*l->index));
	l->icap = cap;
	for (size_t pos = 0; pos < l->n; pos++)
		strlist_index_put(l, pos);
}

/* strlist_take - append s, which the list now owns */
void strlist_take(struct strlist *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = s;
	if (l->index && 2 * l->n > l->icap)
		strlist_index_build(l);
	else if (l->index)
		strlist_index_put(l, l->n - 1);
}

/* strlist_add - append a copy of s */
void strlist_add(struct strlist *l, const char *s)
{
	strlist_take(l, xstrdup(s));
}

/* strlist_has_nocase - is s in the list, ignoring ASCII case */
bool strlist_has_nocase(struct strlist *l, const char *s)
{
	size_t i;

	if (l->index == NULL && l->n < STRLIST_INDEX_FROM) {
		for (i = 0; i < l->n; i++)
			if (strcasecmp(l->v[i], s) == 0)
				return true;
		return false;
	}
	if (l->index == NULL)
		strlist_index_build(l);
	for (i = strlist_hash(s) & (l->icap - 1); l->index[i];
	     i = (i + 1) & (l->icap - 1))
		if (strcasecmp(l->v[l->index[i] - 1], s) == 0)
			return true;
	return false;
}

/* strlist_free - release every string and the array */
void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->index);
	l->v = NULL;
	l->n = 0;
	l->cap = 0;
	l->index = NULL;
	l->icap = 0;
}
