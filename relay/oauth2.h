/*
 * NAME
 *	oauth2 - access tokens for XOAUTH2 and OAUTHBEARER, from a refresh
 *	token, for Gmail, Microsoft 365 and the like
 * SYNOPSIS
 *	#include "relay/oauth2.h"
 *
 *	char *oauth2_token(const struct conf_relay *rc, int dirfd, bool force,
 *			   bool *reauth, char *err, size_t errlen);
 *
 *	int oauth2_parse_reply(const char *json, size_t len,
 *			       struct oauth2_reply *out);
 *	void oauth2_reply_free(struct oauth2_reply *);
 *
 *	void oauth2_set_post(oauth2_post_fn *post);
 *
 *	int oauth2_cache_parse(struct oauth2_cache *c, char *text);
 *	int oauth2_cache_text(const struct oauth2_cache *c, struct buf *b);
 *	void oauth2_cache_free(struct oauth2_cache *c);
 * DESCRIPTION
 *	oauth2_token() hands out an access token for the relay rc. The user
 *	authorised outbox once and put the refresh token in
 *	oauth2_refresh_token_file (its first line); outbox trades it for
 *	access tokens at oauth2_token_url (RFC 6749 section 6: a form POST
 *	with grant_type=refresh_token, client_id, client_secret unless the
 *	client is public, and scope when configured) over verified HTTPS,
 *	through the configured proxy only.
 *
 *	Tokens are cached in the spool directory dirfd, in the file
 *	"oauth2-" plus the relay name with ':' (and anything else unfit for
 *	a file name) as '-': oauth2-relay, oauth2-relay-work. Mode 0600,
 *	"key value" lines:
 *
 *		origin		hex SHA-256 of the refresh token file's token
 *				this cache was started from
 *		refresh_token	the one to use; the endpoint may have
 *				rotated it
 *		access_token	absent until the first refresh
 *		expires		epoch seconds (sys_now() + expires_in)
 *		state		ok, or invalid_grant: the refresh token was
 *				refused, ask for nothing until the file
 *				changes
 *
 *	Every look at the cache happens under an exclusive flock of
 *	"oauth2-NAME.lock", held through the request, so of several outbox
 *	processes one refreshes and the others then read its result. The
 *	cache is replaced atomically (a temporary "oauth2-NAME.tmp", fsync,
 *	rename, fsync of the directory). A cache whose origin is not the
 *	hash of the file's token (first use; the user authorised again) is
 *	discarded.
 *
 *	A cached access token is used until 60 seconds before it expires,
 *	unless force is set: the relay refused it, get a new one.
 *
 *	oauth2_parse_reply() is the token endpoint's JSON reply parser, a
 *	strict one for a flat object: string members with every JSON escape
 *	(\uXXXX and surrogate pairs become UTF-8), numbers, true, false and
 *	null; nested arrays and objects are skipped. It fills the members
 *	outbox uses, each malloc'd or NULL; expires_in is 3600 when absent
 *	and clamped to [0, 86400]. oauth2_reply_free() wipes and frees them.
 *
 *	oauth2_set_post() is for the unit tests: post then stands in for the
 *	HTTPS exchange. It gets the URL and the form body (which holds
 *	secrets), appends the reply to reply (bounded at 64 KiB) and sets
 *	the HTTP status, or returns -1 with a reason in err. NULL restores
 *	HTTPS.
 *
 *	oauth2_cache_parse() reads the cache file's text (NUL-terminated,
 *	changed in place) into c, which starts zeroed; oauth2_cache_text()
 *	appends the file's lines for c to b; oauth2_cache_free() wipes and
 *	frees c's tokens. oauth2_token() is their one user; they are here
 *	for the fuzzing harness (fuzz/fuzz_cache.c).
 * DIAGNOSTICS
 *	oauth2_token() returns NULL with a one-line reason in err, which
 *	never holds a secret. With *reauth set the refresh token was
 *	refused (invalid_grant): the message tells the user to authorise
 *	again. Otherwise the failure is temporary (the endpoint unreachable,
 *	an HTTP error, another error, a malformed reply) and the cache is
 *	left as it was. Either way the mail stays queued.
 *
 *	oauth2_parse_reply() returns -1 on malformed input, every member
 *	then NULL. oauth2_cache_parse() returns -1 for a malformed cache:
 *	a line without a space or a newline, a bad origin, token, expiry
 *	or state, or no origin; c then needs oauth2_cache_free().
 *	oauth2_cache_text() returns -1 when b's bound is reached.
 */
#ifndef OUTBOX_OAUTH2_H
#define OUTBOX_OAUTH2_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "util/buf.h"

/* the token endpoint's answer */
struct oauth2_reply {
	char *access_token;
	char *refresh_token;	/* a rotated refresh token, if any */
	char *token_type;	/* "Bearer" when present */
	char *error;		/* e.g. "invalid_grant" */
	char *error_description;
	long expires_in;	/* seconds */
};

/* an access token for rc, malloc'd (the caller wipes and frees it),
 * or NULL with a one-line reason in err; *reauth is set when the
 * refresh token was refused (invalid_grant): the user must authorise
 * again, and no token request is made again until the refresh token
 * file changes. force: the relay refused the cached token, get a new
 * one. dirfd: the user's spool directory, where the cache lives. */
char *oauth2_token(const struct conf_relay *rc, int dirfd, bool force,
		   bool *reauth, char *err, size_t errlen);

int oauth2_parse_reply(const char *json, size_t len,
		       struct oauth2_reply *out);
void oauth2_reply_free(struct oauth2_reply *);

/* what the cache file holds */
struct oauth2_cache {
	char origin[65];	/* hex SHA-256 of the file's refresh token */
	char *refresh_token;	/* the one to use: rotated, or the file's */
	char *access_token;	/* NULL: none yet */
	long long expires;	/* epoch seconds */
	bool invalid_grant;	/* the refresh token was refused */
};

int oauth2_cache_parse(struct oauth2_cache *, char *text);
int oauth2_cache_text(const struct oauth2_cache *, struct buf *);
void oauth2_cache_free(struct oauth2_cache *);

typedef int oauth2_post_fn(const char *url, const char *body,
			   struct buf *reply, long *status, char *err,
			   size_t errlen);
void oauth2_set_post(oauth2_post_fn *);

#endif
