/*
 * NAME
 *	dkim - DKIM signatures (RFC 6376, RFC 8463) made at submission
 * DESCRIPTION
 *	See dkim.h. Body canonicalization is a small state machine over the
 *	CRLF body (struct dkim_canon): blanks and empty lines are held back
 *	until something shows they are not trailing, so the body is hashed
 *	in one pass with constant memory.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "message/dkim.h"
#include "util/log.h"
#include "util/ossl.h"
#include "util/strlist.h"

#define DKIM_KEY_MAX 16384	/* bytes of a key file */

/* the header fields RFC 6376 5.4.1 recommends signing */
static const char *const dkim_default_headers[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "resent-date",
	"resent-from", "resent-to", "resent-cc", "in-reply-to", "references",
	"list-id", "list-help", "list-unsubscribe", "list-subscribe",
	"list-post", "list-owner", "list-archive", "message-id",
	"mime-version", "content-type", "content-transfer-encoding", NULL
};

struct dkim_canon {
	bool relaxed;
	bool any;		/* something was hashed */
	bool blank;		/* relaxed: blanks held back */
	size_t crlfs;		/* line ends held back */
};

struct dkim_signer {
	const struct conf_dkim *k;
	EVP_PKEY *pkey;
	bool ed25519;
	EVP_MD_CTX *body;
	struct dkim_canon canon;
};

/* dkim_raw_seed - a base64 Ed25519 seed (32 bytes, or 64 with the
 * public half) as dknewkey writes it */
static EVP_PKEY *dkim_raw_seed(const char *text)
{
	unsigned char raw[128], b64[200];
	size_t n = 0;
	int len, pad = 0;

	for (const char *p = text; *p && n < sizeof(b64) - 1; p++)
		if (!isspace((unsigned char)*p))
			b64[n++] = (unsigned char)*p;
	b64[n] = '\0';
	if (n == 0 || n % 4 || n > 4 * (sizeof(raw) / 3))
		return NULL;
	pad = (b64[n - 1] == '=') + (b64[n - 2] == '=');
	len = EVP_DecodeBlock(raw, b64, (int)n) - pad;
	if (len != 32 && len != 64)
		return NULL;
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, 32);
}

/* dkim_read_key - the key file's text, refusing one everyone can read */
static char *dkim_read_key(const char *path, char *err, size_t len)
{
	FILE *fp = conf_open_secret("DKIM key_file", path, err, len);
	struct buf b = BUF_INIT(DKIM_KEY_MAX);
	char chunk[4096];
	size_t n;

	if (fp == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (buf_append(&b, chunk, n) < 0)
			break;
	fclose(fp);
	return buf_steal(&b);
}

/* dkim_load - the private key of k, checked */
static EVP_PKEY *dkim_load(const struct conf_dkim *k, char *err, size_t len)
{
	char *text = dkim_read_key(k->key_file, err, len);
	EVP_PKEY *pk = NULL;
	BIO *bio;

	if (text == NULL)
		return NULL;
	bio = BIO_new_mem_buf(text, -1);
	if (bio)
		pk = PEM_read_bio_PrivateKey(bio, NULL, ossl_no_passphrase,
					     NULL);
	BIO_free(bio);
	if (pk == NULL)
		pk = dkim_raw_seed(text);
	explicit_bzero(text, strlen(text));
	free(text);
	if (pk == NULL)
		snprintf(err, len, "DKIM key_file %s: not a PEM private key "
			 "or an Ed25519 seed", k->key_file);
	else if (!EVP_PKEY_is_a(pk, "ED25519") && !(EVP_PKEY_is_a(pk, "RSA")
						     && EVP_PKEY_get_bits(pk) >=
						     2048))
		snprintf(err, len, "DKIM key_file %s: must be RSA of at least "
			 "2048 bits or Ed25519", k->key_file);
	else
		return pk;
	EVP_PKEY_free(pk);
	return NULL;
}

/* dkim_domain_matches - one sender_domains pattern against a domain */
static bool dkim_domain_matches(const char *pat, size_t plen, const char *d)
{
	size_t dlen = strlen(d);

	if (plen == 1 && pat[0] == '*')
		return true;
	if (plen > 2 && pat[0] == '*' && pat[1] == '.')
		return dlen > plen - 1 &&
		    strncasecmp(d + dlen - (plen - 1), pat + 1, plen - 1) == 0;
	return dlen == plen && strncasecmp(d, pat, plen) == 0;
}

/* dkim_applies - does key k sign mail from domain d */
static bool dkim_applies(const struct conf_dkim *k, const char *d)
{
	const char *p = k->sender_domains;

	if (p == NULL) {
		size_t n = strlen(k->domain), dl = strlen(d);

		return strcasecmp(d, k->domain) == 0 || (dl > n + 1 &&
		    d[dl - n - 1] == '.' && strcasecmp(d + dl - n,
						       k->domain) == 0);
	}
	while (*p) {
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n && dkim_domain_matches(p, n, d))
			return true;
		p += n;
	}
	return false;
}

/* dkim_select - signers for mail from from_domain; -1 on a bad key */
int dkim_select(const struct conf *c, const char *from_domain,
		struct dkim_signer **out, size_t *n, char *err, size_t len)
{
	*n = 0;
	for (size_t i = 0; i < c->ndkim && *n < DKIM_MAX_SIGS; i++) {
		struct dkim_signer *s;

		if (from_domain == NULL || !dkim_applies(&c->dkim[i],
							 from_domain))
			continue;
		s = xcalloc(1, sizeof(*s));
		s->k = &c->dkim[i];
		if ((s->pkey = dkim_load(s->k, err, len)) == NULL) {
			free(s);
			while (*n)
				dkim_free(out[--*n]);
			return -1;
		}
		s->ed25519 = EVP_PKEY_is_a(s->pkey, "ED25519");
		s->body = EVP_MD_CTX_new();
		dkim_body_reset(s);
		out[(*n)++] = s;
	}
	return 0;
}

/* dkim_body_reset - start the body hash over */
void dkim_body_reset(struct dkim_signer *s)
{
	EVP_DigestInit_ex(s->body, EVP_sha256(), NULL);
	memset(&s->canon, 0, sizeof(s->canon));
	s->canon.relaxed = !s->k->simple_body;
}

/* dkim_release - emit held-back line ends and blank before content */
static void dkim_release(struct dkim_signer *s)
{
	struct dkim_canon *c = &s->canon;

	for (; c->crlfs; c->crlfs--)
		EVP_DigestUpdate(s->body, "\r\n", 2);
	if (c->blank)
		EVP_DigestUpdate(s->body, " ", 1);
	c->blank = false;
	c->any = true;
}

/* dkim_body - hash more of the CRLF body, canonicalized */
void dkim_body(struct dkim_signer *s, const char *p, size_t n)
{
	struct dkim_canon *c = &s->canon;
	size_t run = 0;		/* ordinary bytes not yet hashed */

	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		bool wsp = c->relaxed && (ch == ' ' || ch == '\t');

		if (ch != '\r' && ch != '\n' && !wsp) {
			if (run == 0 && (c->crlfs || c->blank))
				dkim_release(s);
			run++;
			c->any = true;
			continue;
		}
		if (run)
			EVP_DigestUpdate(s->body, p + i - run, run);
		run = 0;
		if (wsp)
			c->blank = true;
		else if (ch == '\n') {
			c->blank = false;	/* trailing blanks go */
			c->crlfs++;
		}
	}
	if (run)
		EVP_DigestUpdate(s->body, p + n - run, run);
}

/* dkim_body_hash - finish the body hash, base64 */
static void dkim_body_hash(struct dkim_signer *s, char *b64)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len;

	if (s->canon.any || !s->canon.relaxed)
		EVP_DigestUpdate(s->body, "\r\n", 2);	/* one final CRLF */
	EVP_DigestFinal_ex(s->body, md, &len);
	EVP_EncodeBlock((unsigned char *)b64, md, (int)len);
}

/* dkim_canon_header - one field, canonicalized, with its CRLF */
static void dkim_canon_header(const char *text, size_t len, bool simple,
			      struct buf *out)
{
	const char *colon = memchr(text, ':', len);
	size_t nlen = colon ? (size_t)(colon - text) : len;
	bool blank = false, value = false;	/* value: text after ':' */

	if (simple) {
		buf_append(out, text, len);
		buf_puts(out, "\r\n");
		return;
	}
	while (nlen && (text[nlen - 1] == ' ' || text[nlen - 1] == '\t'))
		nlen--;
	for (size_t i = 0; i < nlen; i++)
		buf_putc(out, (char)tolower((unsigned char)text[i]));
	buf_putc(out, ':');
	for (const char *q = colon ? colon + 1 : text + len; q < text + len;
	     q++) {
		char ch = *q;

		if (ch == '\r' || ch == '\n')
			continue;	/* unfold */
		if (ch == ' ' || ch == '\t') {
			blank = true;
			continue;
		}
		/* blanks: one SP inside the value, none before it (a ':'
		 * in the value keeps the blank after it: "Re: x") */
		if (blank && value)
			buf_putc(out, ' ');
		blank = false;
		value = true;
		buf_putc(out, ch);
	}
	buf_puts(out, "\r\n");
}

/* dkim_names - the h= list: configured, or the recommended fields present
 * plus From once more, so that no second From can be added */
static void dkim_names(const struct conf_dkim *k, const struct headers *hs,
		       struct strlist *names)
{
	if (k->headers) {
		char *copy = xstrdup(k->headers), *save = NULL;

		for (char *w = strtok_r(copy, ": \t", &save); w;
		     w = strtok_r(NULL, ": \t", &save))
			strlist_add(names, w);
		free(copy);
		return;
	}
	for (size_t i = 0; i < hs->n; i++)
		for (const char *const *d = dkim_default_headers; *d; d++)
			if (header_is(&hs->v[i], *d))
				strlist_add(names, *d);
	strlist_add(names, "from");
}

/* dkim_header_data - the signed header fields, bottom-up per name */
static void dkim_header_data(const struct dkim_signer *s,
			     const struct headers *hs,
			     const struct strlist *names, struct buf *data)
{
	for (size_t i = 0; i < names->n; i++) {
		size_t seen = 0, want = 0;

		for (size_t j = 0; j < i; j++)
			want += strcasecmp(names->v[j], names->v[i]) == 0;
		for (size_t j = hs->n; j-- > 0;) {
			if (!header_is(&hs->v[j], names->v[i]) ||
			    seen++ != want)
				continue;
			dkim_canon_header(hs->v[j].text, hs->v[j].len,
					  s->k->simple_header, data);
			break;
		}
	}
}

/* dkim_field - the DKIM-Signature field up to "b=" (TAB = fold) */
static void dkim_field(const struct dkim_signer *s,
		       const struct strlist *names, const char *bh,
		       struct buf *f)
{
	buf_printf(f, "DKIM-Signature: v=1; a=%s; c=%s/%s; d=%s; s=%s;\tt=%lld;"
		   " h=", s->ed25519 ? "ed25519-sha256" : "rsa-sha256",
		   s->k->simple_header ? "simple" : "relaxed",
		   s->k->simple_body ? "simple" : "relaxed", s->k->domain,
		   s->k->selector, (long long)time(NULL));
	for (size_t i = 0; i < names->n; i++)
		buf_printf(f, "%s%s", i ? ":" : "", names->v[i]);
	buf_printf(f, ";\tbh=%s;\tb=", bh);
}

/* dkim_signature - sign data with the key; base64 into out */
static int dkim_signature(struct dkim_signer *s, const struct buf *data,
			  struct buf *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32], *sig = NULL;
	const unsigned char *msg = (const unsigned char *)data->data;
	size_t msglen = data->len, siglen = 0;
	int ok;

	if (s->ed25519) {	/* RFC 8463: PureEd25519 over SHA-256 */
		EVP_Digest(data->data, data->len, md, NULL, EVP_sha256(), NULL);
		msg = md;
		msglen = sizeof(md);
	}
	ok = ctx && EVP_DigestSignInit(ctx, NULL, s->ed25519 ? NULL :
				       EVP_sha256(), NULL, s->pkey) == 1 &&
	    EVP_DigestSign(ctx, NULL, &siglen, msg, msglen) == 1;
	if (ok) {
		sig = xmalloc(siglen);
		ok = EVP_DigestSign(ctx, sig, &siglen, msg, msglen) == 1;
	}
	if (ok) {
		char *b64 = xmalloc(4 * ((siglen + 2) / 3) + 1);

		EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
		buf_puts(out, b64);
		free(b64);
	}
	free(sig);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* dkim_sign - the finished DKIM-Signature field (TAB = fold) into out */
int dkim_sign(struct dkim_signer *s, const struct headers *hs,
	      struct buf *out)
{
	struct strlist names = STRLIST_INIT;
	struct buf data = BUF_INIT(2 * HEADER_BLOCK_MAX);
	struct buf field = BUF_INIT(8192), wire = BUF_INIT(8192);
	char bh[64];
	int rc;

	dkim_body_hash(s, bh);
	dkim_names(s->k, hs, &names);
	dkim_header_data(s, hs, &names, &data);
	dkim_field(s, &names, bh, &field);
	dkim_unfold_tabs(buf_str(&field), &wire);
	dkim_canon_header(wire.data, wire.len, s->k->simple_header, &data);
	data.len -= 2;		/* the signature field without its CRLF */
	rc = dkim_signature(s, &data, &field);
	if (rc == 0)
		buf_append(out, field.data, field.len);
	strlist_free(&names);
	buf_free(&data);
	buf_free(&field);
	buf_free(&wire);
	return rc;
}

/* dkim_free - release a signer */
void dkim_free(struct dkim_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->pkey);
	EVP_MD_CTX_free(s->body);
	free(s);
}

/* dkim_unfold_tabs - the wire form: each TAB becomes CRLF TAB */
void dkim_unfold_tabs(const char *stored, struct buf *wire)
{
	for (const char *p = stored; *p; p++) {
		if (*p == '\t')
			buf_puts(wire, "\r\n");
		buf_putc(wire, *p);
	}
}

/* dkim_record - the DNS TXT record that publishes k's public key */
int dkim_record(const struct conf_dkim *k, struct buf *out, char *err,
		size_t len)
{
	EVP_PKEY *pk = dkim_load(k, err, len);
	unsigned char *der = NULL, raw[32];
	size_t rawlen = sizeof(raw);
	int derlen;
	char *b64;
	size_t blen;

	if (pk == NULL)
		return -1;
	if (EVP_PKEY_is_a(pk, "ED25519")) {
		EVP_PKEY_get_raw_public_key(pk, raw, &rawlen);
		der = OPENSSL_memdup(raw, rawlen);
		derlen = (int)rawlen;
	} else {
		derlen = i2d_PUBKEY(pk, &der);
	}
	b64 = xmalloc(4 * ((size_t)(derlen + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, der, derlen);
	buf_printf(out, "%s._domainkey.%s. IN TXT (\"v=DKIM1; k=%s; p=\"",
		   k->selector, k->domain, EVP_PKEY_is_a(pk, "ED25519") ?
		   "ed25519" : "rsa");
	blen = strlen(b64);
	for (size_t i = 0; i < blen; i += 250)	/* TXT strings: 255 max */
		buf_printf(out, "\n\t\"%.250s\"", b64 + i);
	buf_puts(out, " )\n");
	free(b64);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	return 0;
}
