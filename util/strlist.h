/*
 * NAME
 *	strlist - a growable list of owned strings
 * DESCRIPTION
 *	strlist_has_nocase() looks a string up ignoring ASCII case. Past a
 *	few entries it builds a hash index of the list and keeps it up to
 *	date as strings are added, so that deduplicating n recipients costs
 *	O(n), not O(n^2). The list must then only grow through
 *	strlist_add() and strlist_take().
 */
#ifndef OUTBOX_STRLIST_H
#define OUTBOX_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

struct strlist {
	char **v;
	size_t n;
	size_t cap;
	size_t *index;	/* open addressing: position + 1, 0 empty; or NULL */
	size_t icap;	/* slots in index, a power of two */
};

#define STRLIST_INIT { NULL, 0, 0, NULL, 0 }

void strlist_add(struct strlist *, const char *);
void strlist_take(struct strlist *, char *);
bool strlist_has_nocase(struct strlist *, const char *);
void strlist_free(struct strlist *);

#endif
