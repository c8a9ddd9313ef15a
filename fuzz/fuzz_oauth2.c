/*
 * NAME
 *	fuzz_oauth2 - the OAuth2 token endpoint's JSON reply parser
 *	(relay/oauth2.c oauth2_parse_reply)
 * FEEDS
 *	The input is the body of an HTTP reply from the token endpoint
 *	(Google, Microsoft, or anything a proxy or attacker returns), in a
 *	heap block of exactly its length, as oauth2_parse_reply() gets it.
 * ASSERTS
 *	- the parser reads nothing beyond the input (ASan) and never
 *	  crashes, however deep or long the nesting;
 *	- it returns 0 or -1; on -1 every member is NULL and expires_in is
 *	  the default 3600;
 *	- on 0, expires_in is within [0, 86400] and every member it kept is
 *	  valid UTF-8 (escapes decoded, surrogate pairs joined);
 *	- parsing is deterministic: a second parse of the same bytes gives
 *	  the same members; oauth2_reply_free() leaves nothing behind.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz/common.h"
#include "relay/oauth2.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* utf8_ok - s is well-formed UTF-8 */
static bool utf8_ok(const unsigned char *s)
{
	while (*s) {
		unsigned cp, min;
		size_t n;

		if (s[0] < 0x80) {
			s++;
			continue;
		}
		if ((s[0] & 0xe0) == 0xc0)
			n = 2, cp = s[0] & 0x1fu, min = 0x80;
		else if ((s[0] & 0xf0) == 0xe0)
			n = 3, cp = s[0] & 0x0fu, min = 0x800;
		else if ((s[0] & 0xf8) == 0xf0)
			n = 4, cp = s[0] & 0x07u, min = 0x10000;
		else
			return false;
		for (size_t i = 1; i < n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n;
	}
	return true;
}

/* same - both NULL, or equal strings */
static bool same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = malloc(size);	/* ASan: 0 bytes is 0 bytes */
	struct oauth2_reply r, again;
	char *members[5];
	int rc;

	if (json == NULL && size)
		abort();
	if (size)
		memcpy(json, data, size);
	rc = oauth2_parse_reply(json, size, &r);
	FUZZ_ASSERT(rc == 0 || rc == -1);
	members[0] = r.access_token;
	members[1] = r.refresh_token;
	members[2] = r.token_type;
	members[3] = r.error;
	members[4] = r.error_description;
	if (rc < 0) {
		for (size_t i = 0; i < 5; i++)
			FUZZ_ASSERT(members[i] == NULL);
		FUZZ_ASSERT(r.expires_in == 3600);
	} else {
		FUZZ_ASSERT(r.expires_in >= 0 && r.expires_in <= 86400);
		for (size_t i = 0; i < 5; i++)
			FUZZ_ASSERT(members[i] == NULL ||
				    utf8_ok((unsigned char *)members[i]));
	}
	FUZZ_ASSERT(oauth2_parse_reply(json, size, &again) == rc);
	FUZZ_ASSERT(same(again.access_token, r.access_token) &&
		    same(again.refresh_token, r.refresh_token) &&
		    same(again.token_type, r.token_type) &&
		    same(again.error, r.error) &&
		    same(again.error_description, r.error_description) &&
		    again.expires_in == r.expires_in);
	oauth2_reply_free(&r);
	oauth2_reply_free(&again);
	FUZZ_ASSERT(r.access_token == NULL && r.error == NULL);
	free(json);
	return 0;
}
