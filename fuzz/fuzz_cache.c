/*
 * NAME
 *	fuzz_cache - the caches outbox keeps in the spool: the TLS session
 *	file tls-NAME (relay/tlscache.c tlscache_parse) and the OAuth2
 *	token cache oauth2-NAME (relay/oauth2.c oauth2_cache_parse)
 * FEEDS
 *	The input's first byte chooses: bit 0 clear, the rest is an OAuth2
 *	token cache file; set, a TLS session file, whose first line the
 *	harness writes itself when bit 1 is set (so that the PEM after it
 *	is read), checked at a fixed clock: with bit 2, an hour after the
 *	seed corpus's sessions began (they are fresh), else in 2096 (every
 *	session has expired). Either file is what a crash, a full disk or
 *	a hand edit can leave.
 * ASSERTS
 *	TLS session file:
 *	- nothing is taken from a file whose first line is not the magic
 *	  and this key;
 *	- a session taken can be resumed and has not expired at the clock
 *	  given;
 *	- written back by tlscache_pem() as tlscache_save() writes it,
 *	  with the certificate and without, and read again, it is taken
 *	  again and writes back the same bytes; stripped, it holds no
 *	  certificate, and stripping it again changes nothing.
 *	OAuth2 token cache:
 *	- a cache taken has a 64-hex-digit origin, tokens of printable
 *	  ASCII without spaces, a non-negative expiry;
 *	- written back (oauth2_cache_text) and read again, it is the same
 *	  cache, and writes back the same text.
 *	Both: nothing read beyond the input, nothing leaked (ASan, LSan).
 */
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/common.h"
#include "relay/oauth2.h"
#include "relay/tlscache.h"
#include "util/buf.h"

#define KEY \
	"5f3c9a0e8b7d6c5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877"
#define HEAD	"outbox-tls-session-1 " KEY "\n"
#define SEED_TIME	1796412219	/* when the corpus's sessions began */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* session_pem - the file's text for s, as tlscache_save() writes it */
static char *session_pem(SSL_SESSION *s, bool strip)
{
	BIO *b = BIO_new(BIO_s_mem());
	struct buf out = BUF_INIT(1 << 20);
	char *pem = NULL;
	long n;

	FUZZ_ASSERT(b != NULL);
	FUZZ_ASSERT(tlscache_pem(s, strip, b) == 0);
	n = BIO_get_mem_data(b, &pem);
	FUZZ_ASSERT(n > 0);
	FUZZ_ASSERT(buf_puts(&out, HEAD) == 0);
	FUZZ_ASSERT(buf_append(&out, pem, (size_t)n) == 0);
	BIO_free(b);
	return buf_steal(&out);
}

/* check_rewrite - s written back (stripped or not) and read again */
static void check_rewrite(SSL_SESSION *s, bool strip, time_t now)
{
	char *pem = session_pem(s, strip), *pem2;
	SSL_SESSION *again = tlscache_parse(pem, KEY, now);

	FUZZ_ASSERT(again != NULL);
	if (strip)
		FUZZ_ASSERT(SSL_SESSION_get0_peer(again) == NULL);
	pem2 = session_pem(again, strip);
	FUZZ_ASSERT(strcmp(pem, pem2) == 0);
	SSL_SESSION_free(again);
	free(pem);
	free(pem2);
}

/* check_session - tlscache_parse() on text at now */
static void check_session(const char *text, time_t now)
{
	SSL_SESSION *s = tlscache_parse(text, KEY, now);

	if (strncmp(text, HEAD, strlen(HEAD)) != 0)
		FUZZ_ASSERT(s == NULL);
	if (s == NULL)
		return;
	FUZZ_ASSERT(SSL_SESSION_is_resumable(s));
	FUZZ_ASSERT(SSL_SESSION_get_time(s) <= now);
	FUZZ_ASSERT(now - SSL_SESSION_get_time(s) <
		    SSL_SESSION_get_timeout(s));
	check_rewrite(s, false, now);
	check_rewrite(s, true, now);
	SSL_SESSION_free(s);
}

/* token_ok - what the cache may hold as a token */
static bool token_ok(const char *t)
{
	if (t == NULL)
		return true;
	if (*t == '\0')
		return false;
	for (; *t; t++)
		if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 0x7f)
			return false;
	return true;
}

/* same_token - both NULL, or equal */
static bool same_token(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* check_oauth2 - oauth2_cache_parse() on text (changed in place) */
static void check_oauth2(char *text)
{
	struct oauth2_cache c = { 0 }, c2 = { 0 };
	struct buf t1 = BUF_INIT(1 << 20), t2 = BUF_INIT(1 << 20);
	char *copy;

	if (oauth2_cache_parse(&c, text) < 0) {
		oauth2_cache_free(&c);
		return;
	}
	FUZZ_ASSERT(strlen(c.origin) == 64 &&
		    strspn(c.origin, "0123456789abcdef") == 64);
	FUZZ_ASSERT(token_ok(c.refresh_token) && token_ok(c.access_token));
	FUZZ_ASSERT(c.expires >= 0);
	FUZZ_ASSERT(oauth2_cache_text(&c, &t1) == 0);
	copy = strdup(buf_str(&t1));
	FUZZ_ASSERT(copy != NULL);
	FUZZ_ASSERT(oauth2_cache_parse(&c2, copy) == 0);
	FUZZ_ASSERT(strcmp(c.origin, c2.origin) == 0);
	FUZZ_ASSERT(same_token(c.refresh_token, c2.refresh_token));
	FUZZ_ASSERT(same_token(c.access_token, c2.access_token));
	FUZZ_ASSERT(c.expires == c2.expires);
	FUZZ_ASSERT(c.invalid_grant == c2.invalid_grant);
	FUZZ_ASSERT(oauth2_cache_text(&c2, &t2) == 0);
	FUZZ_ASSERT(strcmp(buf_str(&t1), buf_str(&t2)) == 0);
	free(copy);
	buf_free(&t1);
	buf_free(&t2);
	oauth2_cache_free(&c);
	oauth2_cache_free(&c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf text = BUF_INIT(1 << 20);

	if (size < 1)
		return 0;
	if ((data[0] & 3) == 3)
		FUZZ_ASSERT(buf_puts(&text, HEAD) == 0);
	/* the files are read as C strings: a NUL ends them */
	FUZZ_ASSERT(buf_append(&text, data + 1, strnlen((const char *)data +
							1, size - 1)) == 0);
	FUZZ_ASSERT(buf_putc(&text, '\0') == 0);
	if (data[0] & 1)
		check_session(buf_str(&text), data[0] & 4 ? SEED_TIME + 3600 :
			      4000000000);
	else
		check_oauth2(text.data);
	buf_free(&text);
	return 0;
}
