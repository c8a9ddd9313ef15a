/*
 * NAME
 *	test_strlist - the string list and its case-insensitive lookup
 */
#include <stdio.h>
#include <string.h>

#include "tests/unit/t.h"
#include "util/strlist.h"

/* lookups agree with a plain scan before and after the index is built,
 * and stay right as the list (and the index) grows */
static void strlist_lookup_with_index(void)
{
	struct strlist l = STRLIST_INIT;
	char s[64], up[64];

	for (int i = 0; i < 5000; i++) {
		snprintf(s, sizeof(s), "user%d@Example.org", i);
		snprintf(up, sizeof(up), "USER%d@EXAMPLE.ORG", i);
		if (!T_CHECK(!strlist_has_nocase(&l, s)))
			break;
		strlist_add(&l, s);
		if (!T_CHECK(strlist_has_nocase(&l, up)))
			break;
	}
	T_CHECK(l.index != NULL);
	T_CHECK(2 * l.n <= l.icap);
	T_CHECK(!strlist_has_nocase(&l, "user5000@example.org"));
	T_CHECK(strlist_has_nocase(&l, "user0@example.org"));
	strlist_free(&l);
	T_CHECK(l.index == NULL && l.n == 0);
}

/* a short list is scanned; no index is made for it */
static void strlist_short_list_has_no_index(void)
{
	struct strlist l = STRLIST_INIT;

	strlist_add(&l, "a@b");
	T_CHECK(strlist_has_nocase(&l, "A@B"));
	T_CHECK(!strlist_has_nocase(&l, "a@c"));
	T_CHECK(l.index == NULL);
	strlist_free(&l);
}

const struct t_test t_strlist_tests[] = {
	T_ENTRY(strlist_lookup_with_index),
	T_ENTRY(strlist_short_list_has_no_index),
	T_END
};
