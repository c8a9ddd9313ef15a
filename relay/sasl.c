/*
 * NAME
 *	sasl - the client side of SMTP AUTH: which mechanism, what to send
 * DESCRIPTION
 *	See sasl.h. Pure functions over strings: unit-tested on their own.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "relay/sasl.h"

#define SASL_RAW_MAX	8192	/* a decoded challenge or response */

/* sasl_word - whether the space-separated list [p, end) holds word */
static int sasl_word(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);

	while (p < end) {
		size_t k;

		while (p < end && *p == ' ')
			p++;
		for (k = 0; p + k < end && p[k] != ' '; k++)
			;
		if (k == n && strncasecmp(p, word, n) == 0)
			return 1;
		p += k;
	}
	return 0;
}

/* sasl_offered - the EHLO reply (one "250-KEYWORD ..." per line) offers
 * the mechanism */
int sasl_offered(const char *lines, const char *mech)
{
	const char *p = lines;

	while (p && *p) {
		const char *end = strchr(p, '\n');

		if (end == NULL)
			end = p + strlen(p);
		if (end - p > 9 && strncmp(p, "250", 3) == 0 &&
		    strncasecmp(p + 4, "AUTH", 4) == 0 &&
		    (p[8] == ' ' || p[8] == '=') &&
		    sasl_word(p + 9, end[-1] == '\r' ? end - 1 : end, mech))
			return 1;
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* sasl_pick - the mechanism to use, 0 if none fits */
unsigned sasl_pick(unsigned allowed, const char *lines, int have_secret)
{
	static const unsigned order[] = { AUTH_CRAM_MD5, AUTH_OAUTHBEARER,
		AUTH_XOAUTH2, AUTH_PLAIN, AUTH_LOGIN };

	if (allowed == AUTH_EXTERNAL)
		return sasl_offered(lines, "EXTERNAL") ? AUTH_EXTERNAL : 0;
	if (!have_secret)
		return 0;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if ((allowed & order[i]) &&
		    sasl_offered(lines, conf_auth_name(order[i])))
			return order[i];
	return 0;
}

/* sasl_b64 - append the base64 of n raw bytes ("=" for none) */
static int sasl_b64(struct buf *out, const unsigned char *raw, size_t n)
{
	unsigned char enc[4 * ((SASL_RAW_MAX + 2) / 3) + 1];

	if (n > SASL_RAW_MAX)
		return -1;
	int rc;

	if (n == 0)
		return buf_puts(out, "=");
	EVP_EncodeBlock(enc, raw, (int)n);
	rc = buf_puts(out, (char *)enc);
	explicit_bzero(enc, sizeof(enc));
	return rc;
}

/* sasl_raw - the initial response of mech, unencoded; -1 if too long */
static int sasl_raw(const struct sasl_cred *c, unsigned mech, char *raw,
		    size_t len)
{
	const char *u = c->user ? c->user : "", *s = c->secret ? c->secret :
	    "";
	int n;

	if (mech == AUTH_PLAIN) {
		n = snprintf(raw, len, "%c%s%c%s", 0, u, 0, s);
	} else if (mech == AUTH_XOAUTH2) {
		n = snprintf(raw, len, "user=%s\001auth=Bearer %s\001\001", u,
			     s);
	} else if (mech == AUTH_OAUTHBEARER) {
		n = snprintf(raw, len, "n,a=%s,\001host=%s\001port=%u\001"
			     "auth=Bearer %s\001\001", u, c->host, c->port, s);
	} else {
		n = snprintf(raw, len, "%s", u);	/* EXTERNAL */
	}
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* sasl_start - "AUTH MECH [initial-response]" */
int sasl_start(const struct sasl_cred *c, unsigned mech, struct buf *out)
{
	char raw[SASL_RAW_MAX + 1];
	int n, rv;

	if (buf_printf(out, "AUTH %s", conf_auth_name(mech)) < 0)
		return -1;
	if (mech == AUTH_LOGIN || mech == AUTH_CRAM_MD5)
		return 0;	/* they begin with the server's challenge */
	if ((n = sasl_raw(c, mech, raw, sizeof(raw))) < 0)
		return -1;
	rv = buf_putc(out, ' ') < 0 ||
	    sasl_b64(out, (unsigned char *)raw, (size_t)n) < 0 ? -1 : 0;
	explicit_bzero(raw, sizeof(raw));
	return rv;
}

/* sasl_cram - "user hex(HMAC-MD5(secret, challenge))" (RFC 2195) */
static int sasl_cram(const struct sasl_cred *c, const char *challenge,
		     struct buf *out)
{
	unsigned char dec[SASL_RAW_MAX], md[EVP_MAX_MD_SIZE];
	char resp[SASL_RAW_MAX];
	size_t clen = strlen(challenge);
	unsigned mdlen = 0;
	int n, k, rv = -1;

	if (clen > 4 * (SASL_RAW_MAX / 3) || clen % 4 ||
	    (n = EVP_DecodeBlock(dec, (const unsigned char *)challenge,
				 (int)clen)) < 0)
		return -1;
	n -= clen && challenge[clen - 1] == '=' ? 1 + (challenge[clen - 2] ==
						       '=') : 0;
	if (HMAC(EVP_md5(), c->secret, (int)strlen(c->secret), dec,
		 (size_t)n, md, &mdlen) == NULL)
		return -1;
	k = snprintf(resp, sizeof(resp), "%s ", c->user ? c->user : "");
	for (unsigned i = 0; i < mdlen && k > 0 && (size_t)k + 3 <
	     sizeof(resp); i++)
		k += snprintf(resp + k, sizeof(resp) - (size_t)k, "%02x",
			      md[i]);
	if (k > 0 && (size_t)k + 3 < sizeof(resp))
		rv = sasl_b64(out, (unsigned char *)resp, (size_t)k);
	explicit_bzero(resp, sizeof(resp));
	return rv;
}

/* sasl_step - the answer to the step-th 334 (0 is the first) */
int sasl_step(const struct sasl_cred *c, unsigned mech, unsigned step,
	      const char *challenge, struct buf *out)
{
	const char *v;

	switch (mech) {
	case AUTH_LOGIN:
		if (step > 1)
			return -1;
		v = step == 0 ? c->user : c->secret;
		if (v == NULL || *v == '\0')
			return 0;	/* an empty line, not "=" (RFC 4954) */
		return sasl_b64(out, (const unsigned char *)v, strlen(v));
	case AUTH_CRAM_MD5:
		return step == 0 ? sasl_cram(c, challenge, out) : -1;
	case AUTH_XOAUTH2:
		return step == 0 ? 0 : -1;	/* an empty line */
	case AUTH_OAUTHBEARER:
		return step == 0 ? buf_puts(out, "AQ==") : -1;	/* ^A */
	default:
		return -1;
	}
}
