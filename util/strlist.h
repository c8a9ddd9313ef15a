/*
 * NAME
 *	strlist - a growable list of owned strings
 */
#ifndef OUTBOX_STRLIST_H
#define OUTBOX_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

struct strlist {
	char **v;
	size_t n;
	size_t cap;
};

#define STRLIST_INIT { NULL, 0, 0 }

void strlist_add(struct strlist *, const char *);
void strlist_take(struct strlist *, char *);
bool strlist_has_nocase(const struct strlist *, const char *);
void strlist_free(struct strlist *);

#endif
