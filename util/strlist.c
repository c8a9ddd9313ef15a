/*
 * NAME
 *	strlist - a growable list of owned strings
 */
#include <stdlib.h>
#include <strings.h>

#include "util/buf.h"
#include "util/strlist.h"

/* strlist_take - append s, which the list now owns */
void strlist_take(struct strlist *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = s;
}

/* strlist_add - append a copy of s */
void strlist_add(struct strlist *l, const char *s)
{
	strlist_take(l, xstrdup(s));
}

/* strlist_has_nocase - is s in the list, ignoring ASCII case */
bool strlist_has_nocase(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], s) == 0)
			return true;
	return false;
}

/* strlist_free - release every string and the array */
void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->cap = 0;
}
