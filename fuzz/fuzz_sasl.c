/*
 * NAME
 *	fuzz_sasl - the client side of SMTP AUTH (relay/sasl.c): the
 *	relay's EHLO AUTH lines and its 334 challenges
 * FEEDS
 *	The input is cut at NUL bytes into up to four strings: the EHLO
 *	reply's lines as relay.c keeps them ("250-AUTH PLAIN LOGIN\r\n"
 *	...), a 334 challenge (the reply text after "334 "), a user name
 *	and a secret. The first byte, before them, chooses the mechanisms
 *	[relay] auth allows (its low six bits) and whether a secret exists.
 *	The relay controls the first two; the last two are configuration,
 *	fuzzed too because they go into the initial responses.
 * ASSERTS
 *	- sasl_offered() agrees with an independent reading of the lines
 *	  (a "250" line whose keyword is AUTH, then '=' or ' ', then the
 *	  mechanism as a space-separated word, case-insensitive);
 *	- sasl_pick() returns 0 or one mechanism that is allowed and
 *	  offered: the first of CRAM-MD5, OAUTHBEARER, XOAUTH2, PLAIN,
 *	  LOGIN that is, EXTERNAL only when it alone is allowed, nothing
 *	  but EXTERNAL without a secret;
 *	- sasl_start() writes "AUTH MECH" and, where the mechanism has an
 *	  initial response, base64 that decodes (with the harness's own
 *	  strict decoder) to exactly the RFC's layout of user and secret;
 *	- sasl_step() answers LOGIN with the user then the secret, XOAUTH2
 *	  and OAUTHBEARER with their abort replies, and CRAM-MD5 with
 *	  base64 of "user " and 32 lower-case hex digits; when the
 *	  challenge is strict base64 those digits are HMAC-MD5(secret,
 *	  decoded challenge), computed here; any other step is -1;
 *	- every output fits the buffer's bound, or the call returned -1.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "fuzz/common.h"
#include "relay/sasl.h"
#include "util/buf.h"

#define OUT_MAX	(16 * 1024)	/* relay.c's bound on an AUTH line */

static const unsigned mechs[] = { AUTH_PLAIN, AUTH_LOGIN, AUTH_CRAM_MD5,
	AUTH_XOAUTH2, AUTH_OAUTHBEARER, AUTH_EXTERNAL };
#define NMECHS	(sizeof(mechs) / sizeof(mechs[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* b64val - the value of one base64 character, -1 if not one */
static int b64val(char c)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;

	return p ? (int)(p - a) : -1;
}

/* unb64 - strict base64 ("=" alone is empty); malloc'd, -1 if not */
static long unb64(const char *s, unsigned char **out)
{
	size_t n = strlen(s), pad = 0, k = 0;
	unsigned char *d;

	*out = NULL;
	if (strcmp(s, "=") == 0)
		n = 0;
	if (n % 4)
		return -1;
	if (n && s[n - 1] == '=')
		pad = n >= 2 && s[n - 2] == '=' ? 2 : 1;
	if ((d = malloc(n / 4 * 3 + 1)) == NULL)
		abort();
	for (size_t i = 0; i < n; i += 4) {
		unsigned v = 0;

		for (size_t j = 0; j < 4; j++) {
			int c = i + j >= n - pad ? 0 : b64val(s[i + j]);

			if (c < 0) {
				free(d);
				return -1;
			}
			v = v << 6 | (unsigned)c;
		}
		d[k++] = (unsigned char)(v >> 16);
		d[k++] = (unsigned char)(v >> 8);
		d[k++] = (unsigned char)v;
	}
	*out = d;
	return (long)(k - pad);
}

/* unchallenge - a challenge decoded: strict base64, where "=" is not
 * the empty string (that is only for responses, RFC 4954 4) */
static long unchallenge(const char *s, unsigned char **out)
{
	if (strcmp(s, "=") == 0) {
		*out = NULL;
		return -1;
	}
	return unb64(s, out);
}

/* offered - an independent reading of the EHLO lines */
static bool offered(const char *lines, const char *mech)
{
	char *copy = strdup(lines), *save = NULL, *line;
	bool yes = false;

	if (copy == NULL)
		abort();
	for (line = strtok_r(copy, "\n", &save); line && !yes;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);
		char *w, *s2 = NULL;

		if (n <= 9 || strncmp(line, "250", 3) != 0 ||
		    strncasecmp(line + 4, "AUTH", 4) != 0 ||
		    (line[8] != ' ' && line[8] != '='))
			continue;
		if (line[n - 1] == '\r')
			line[n - 1] = '\0';
		for (w = strtok_r(line + 9, " ", &s2); w && !yes;
		     w = strtok_r(NULL, " ", &s2))
			yes = strcasecmp(w, mech) == 0;
	}
	free(copy);
	return yes;
}

/* check_pick - sasl_offered() and sasl_pick() against the oracle */
static void check_pick(unsigned allowed, const char *lines, bool secret)
{
	static const unsigned order[] = { AUTH_CRAM_MD5, AUTH_OAUTHBEARER,
		AUTH_XOAUTH2, AUTH_PLAIN, AUTH_LOGIN };
	unsigned want = 0, got = sasl_pick(allowed, lines, secret);

	for (size_t i = 0; i < NMECHS; i++) {
		const char *name = conf_auth_name(mechs[i]);

		FUZZ_ASSERT(!sasl_offered(lines, name) == !offered(lines,
								  name));
	}
	if (allowed == AUTH_EXTERNAL)
		want = offered(lines, "EXTERNAL") ? AUTH_EXTERNAL : 0;
	else if (secret)
		for (size_t i = 0; i < 5 && want == 0; i++)
			if ((allowed & order[i]) &&
			    offered(lines, conf_auth_name(order[i])))
				want = order[i];
	FUZZ_ASSERT(got == want);
}

/* expect_b64 - text is base64 of exactly want[0..n) */
static void expect_b64(const char *text, const void *want, size_t n)
{
	unsigned char *d;
	long k = unb64(text, &d);

	FUZZ_ASSERT(k == (long)n);
	FUZZ_ASSERT(n == 0 || (d != NULL && memcmp(d, want, n) == 0));
	free(d);
}

/* initial - the initial response the RFCs define for mech */
static size_t initial(unsigned mech, const struct sasl_cred *c, char *out,
		      size_t len)
{
	const char *u = c->user ? c->user : "", *s = c->secret ? c->secret :
	    "";
	struct buf b = BUF_INIT(len);
	size_t n;

	if (mech == AUTH_PLAIN) {
		buf_putc(&b, '\0');
		buf_puts(&b, u);
		buf_putc(&b, '\0');
		buf_puts(&b, s);
	} else if (mech == AUTH_XOAUTH2) {
		buf_printf(&b, "user=%s\001auth=Bearer %s\001\001", u, s);
	} else if (mech == AUTH_OAUTHBEARER) {
		buf_printf(&b, "n,a=%s,\001host=%s\001port=%u\001auth=Bearer "
			   "%s\001\001", u, c->host, c->port, s);
	} else {
		buf_puts(&b, u);
	}
	n = b.len;
	if (n)
		memcpy(out, b.data, n);
	buf_free(&b);
	return n;
}

/* check_start - "AUTH MECH" and the initial response, decoded */
static void check_start(unsigned mech, const struct sasl_cred *c)
{
	const char *name = conf_auth_name(mech);
	struct buf out = BUF_INIT(OUT_MAX);
	size_t nl = strlen(name);
	static char want[OUT_MAX];
	size_t n;

	if (sasl_start(c, mech, &out) < 0) {
		buf_free(&out);
		return;		/* too long for the bound: refused */
	}
	FUZZ_ASSERT(out.len <= OUT_MAX);
	FUZZ_ASSERT(strncmp(buf_str(&out), "AUTH ", 5) == 0);
	FUZZ_ASSERT(strncmp(buf_str(&out) + 5, name, nl) == 0);
	if (mech == AUTH_LOGIN || mech == AUTH_CRAM_MD5) {
		FUZZ_ASSERT(out.len == 5 + nl);
	} else {
		FUZZ_ASSERT(buf_str(&out)[5 + nl] == ' ');
		n = initial(mech, c, want, sizeof(want));
		expect_b64(buf_str(&out) + 6 + nl, want, n);
	}
	buf_free(&out);
}

/* check_cram - "user " and the keyed digest, exact when we can tell */
static void check_cram(const struct sasl_cred *c, const char *challenge,
		       const char *resp)
{
	unsigned char *raw, *ch, md[EVP_MAX_MD_SIZE];
	long n = unb64(resp, &raw), cn;
	const char *u = c->user ? c->user : "";
	size_t ul = strlen(u);
	unsigned mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	FUZZ_ASSERT(n == (long)ul + 1 + 32);
	FUZZ_ASSERT(memcmp(raw, u, ul) == 0 && raw[ul] == ' ');
	for (size_t i = ul + 1; i < (size_t)n; i++)
		FUZZ_ASSERT(strchr("0123456789abcdef", raw[i]) != NULL);
	if ((cn = unchallenge(challenge, &ch)) >= 0) {
		FUZZ_ASSERT(HMAC(EVP_md5(), c->secret, (int)strlen(c->secret),
				 ch, (size_t)cn, md, &mdlen) != NULL);
		for (unsigned i = 0; i < mdlen; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		FUZZ_ASSERT(mdlen == 16 && memcmp(raw + ul + 1, hex, 32) == 0);
	}
	free(ch);
	free(raw);
}

/* cram_answerable - a strict base64 challenge of up to 8 KB decoded,
 * from a user name of up to 1 KB: sasl_step() must answer it */
static bool cram_answerable(const struct sasl_cred *c, const char *challenge)
{
	unsigned char *d;
	long n = unchallenge(challenge, &d);

	free(d);
	return n >= 0 && n <= 8000 && (c->user == NULL ||
				      strlen(c->user) <= 1024);
}

/* check_step - each step's answer to the challenge */
static void check_step(unsigned mech, const struct sasl_cred *c,
		       const char *challenge)
{
	struct buf out = BUF_INIT(OUT_MAX);

	for (unsigned step = 0; step < 3; step++) {
		int rc;

		buf_reset(&out);
		rc = sasl_step(c, mech, step, challenge, &out);
		FUZZ_ASSERT(rc == 0 || rc == -1);
		FUZZ_ASSERT(out.len <= OUT_MAX);
		if (mech == AUTH_LOGIN && step < 2) {
			const char *v = step ? c->secret : c->user;

			if (v == NULL || *v == '\0')
				FUZZ_ASSERT(rc == 0 && out.len == 0);
			else if (rc == 0)
				expect_b64(buf_str(&out), v, strlen(v));
		} else if (mech == AUTH_CRAM_MD5 && step == 0) {
			if (rc == 0)
				check_cram(c, challenge, buf_str(&out));
			else
				FUZZ_ASSERT(!cram_answerable(c, challenge));
		} else if (mech == AUTH_XOAUTH2 && step == 0) {
			FUZZ_ASSERT(rc == 0 && out.len == 0);
		} else if (mech == AUTH_OAUTHBEARER && step == 0) {
			FUZZ_ASSERT(rc == 0 && strcmp(buf_str(&out), "AQ==")
				    == 0);
		} else {
			FUZZ_ASSERT(rc == -1);
		}
	}
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *part[4] = { "", "", NULL, NULL }, *p;
	unsigned allowed;
	bool secret;

	if (size < 1)
		return 0;
	allowed = data[0] & 0x3fu;
	secret = data[0] & 0x40u;
	if ((text = malloc(size)) == NULL)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	p = text;
	for (size_t i = 0; i < 4 && p; i++) {
		part[i] = p;
		p = memchr(p, '\0', (size_t)(text + size - 1 - p));
		p = p ? p + 1 : NULL;
	}
	/* a secret is a password or a token: never empty in relay.c */
	struct sasl_cred c = { part[2], secret && part[3] && *part[3] ?
		part[3] : NULL, "relay.example", 587 };

	check_pick(allowed, part[0], c.secret != NULL);
	for (size_t i = 0; i < NMECHS; i++) {
		check_start(mechs[i], &c);
		if (mechs[i] != AUTH_CRAM_MD5 || c.secret)
			check_step(mechs[i], &c, part[1]);
	}
	free(text);
	return 0;
}
