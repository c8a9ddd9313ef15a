/*
 * NAME
 *	fuzz_dkim - DKIM signing of untrusted messages (message/dkim.c):
 *	body canonicalization fed in pieces, header canonicalization,
 *	the signature
 * FEEDS
 *	The input is a message as submit() holds it: the header block (up
 *	to the first empty line; lines starting with a blank continue a
 *	field; lines with a NUL, over 998 octets or without a field name
 *	are left out) becomes a struct headers, the rest is the body, its
 *	lines ended with CRLF as submit() writes them. Two signers share one
 *	Ed25519 key made at start-up: relaxed/relaxed with the default
 *	field list, and simple/simple with h=from:to:subject:subject:date:
 *	x-missing (oversigning, a missing field). The body goes through
 *	dkim_body() whole, in pieces whose ends the input's bytes choose
 *	(empty pieces included), and a byte at a time; the raw, unnormalized
 *	bytes after the header block too.
 * ASSERTS
 *	- the body hash does not depend on how the body is cut into pieces,
 *	  for CRLF text and for arbitrary bytes;
 *	- the body hash (bh=) is the SHA-256 of the body canonicalized by an
 *	  independent implementation of RFC 6376 3.4.3 / 3.4.4;
 *	- the signature (b=) verifies under an independent verifier: the
 *	  fields named in h= taken bottom-up, canonicalized per RFC 6376
 *	  3.4.1 / 3.4.2, then the DKIM-Signature field itself without the
 *	  b= value (RFC 8463: Ed25519 over the SHA-256 of that);
 *	- the field, as stored, is one line (TAB stands for a fold).
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "fuzz/common.h"
#include "message/dkim.h"
#include "message/header.h"
#include "queue/spool.h"
#include "util/buf.h"
#include "util/log.h"

#define LINE_LIMIT	998
#define BYTEWISE_MAX	1024	/* longest body fed a byte at a time */

static struct conf_dkim fuzz_keys[2];
static struct conf conf;
static struct dkim_signer *signers[DKIM_MAX_SIGS];
static size_t nsigners;
static EVP_PKEY *key;

/* make_key - an Ed25519 key in a 0600 PEM file under dir */
static char *make_key(const char *dir)
{
	struct buf path = BUF_INIT(4096);
	FILE *fp;

	buf_printf(&path, "%s/dkim.key", dir);
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	fp = fopen(buf_str(&path), "we");
	if (key == NULL || fp == NULL || fchmod(fileno(fp), 0600) < 0 ||
	    !PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) ||
	    fclose(fp) != 0)
		abort();
	return buf_steal(&path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *dir = fuzz_tmpdir("dkim"), err[256];
	char *path = make_key(dir);

	(void)argc;
	(void)argv;
	log_set_stderr(false);
	for (size_t i = 0; i < 2; i++) {
		fuzz_keys[i].label = i ? "dkim:simple" : "dkim";
		fuzz_keys[i].domain = "example.com";
		fuzz_keys[i].selector = i ? "simple" : "relaxed";
		fuzz_keys[i].key_file = path;
		fuzz_keys[i].simple_header = fuzz_keys[i].simple_body = i == 1;
	}
	fuzz_keys[1].headers = "from:to:subject:subject:date:x-missing";
	conf.dkim = fuzz_keys;
	conf.ndkim = 2;
	if (dkim_select(&conf, "example.com", signers, &nsigners, err,
			sizeof(err)) < 0 || nsigners != 2) {
		fprintf(stderr, "fuzz_dkim: %s\n", err);
		abort();
	}
	return 0;
}

/* next_line - the line at *pos (LF, CR LF or a lone CR ends it, as
 * submit reads); its length, *pos moved past it */
static size_t next_line(const char *p, size_t n, size_t *pos)
{
	size_t i = *pos, len;

	while (i < n && p[i] != '\n' && p[i] != '\r')
		i++;
	len = i - *pos;
	if (i < n && p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
		i++;
	*pos = i < n ? i + 1 : i;
	return len;
}

/* split - headers into hs, the CRLF body into body; where the raw body
 * starts */
static size_t split(const char *p, size_t n, struct headers *hs,
		    struct buf *body)
{
	size_t pos = 0, raw = n;
	bool head = true;

	while (pos < n) {
		size_t start = pos, len = next_line(p, n, &pos);
		const char *l = p + start;

		if (head && len == 0) {
			head = false;
			raw = pos;
			continue;
		}
		if (head && (memchr(l, '\0', len) || len > LINE_LIMIT))
			continue;
		if (head && (l[0] == ' ' || l[0] == '\t') && hs->n) {
			headers_fold(hs, l, len);
			continue;
		}
		if (head && header_name_len(l, len)) {
			headers_add(hs, l, len);
			continue;
		}
		head = false;
		buf_append(body, l, len);
		buf_puts(body, "\r\n");
	}
	return raw;
}

/* is_wsp - SP or HTAB */
static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ref_body - RFC 6376 3.4.3 (simple) or 3.4.4 (relaxed) of CRLF text */
static void ref_body(const char *p, size_t n, bool simple, struct buf *out)
{
	size_t pos = 0;

	while (pos < n) {
		const char *e = memmem(p + pos, n - pos, "\r\n", 2);
		size_t len = (size_t)(e - p) - pos, start = out->len;

		FUZZ_ASSERT(e != NULL);
		for (size_t i = 0; i < len; i++) {
			char c = p[pos + i];

			if (simple || !is_wsp(c))
				buf_putc(out, c);
			else if (out->len == start ||
				 out->data[out->len - 1] != ' ')
				buf_putc(out, ' ');	/* a run: one SP */
		}
		if (!simple && out->len > start &&
		    out->data[out->len - 1] == ' ')
			out->len--;	/* no WSP at the end of a line */
		buf_puts(out, "\r\n");
		pos += len + 2;
	}
	for (;;) {	/* no empty lines at the end */
		if (out->len == 2 && memcmp(out->data, "\r\n", 2) == 0)
			out->len = 0;
		else if (out->len >= 4 && memcmp(out->data + out->len - 4,
						 "\r\n\r\n", 4) == 0)
			out->len -= 2;
		else
			break;
	}
	if (simple && out->len == 0)
		buf_puts(out, "\r\n");
	if (out->data)
		out->data[out->len] = '\0';
}

/* ref_header - RFC 6376 3.4.1 (simple) or 3.4.2 (relaxed) of one field
 * as outbox keeps it (folds as CRLF), with its CRLF */
static void ref_header(const char *t, size_t len, bool simple,
		       struct buf *out)
{
	const char *colon = memchr(t, ':', len);
	size_t nlen = colon ? (size_t)(colon - t) : len, start;

	if (simple) {
		buf_append(out, t, len);
		buf_puts(out, "\r\n");
		return;
	}
	while (nlen && is_wsp(t[nlen - 1]))
		nlen--;
	for (size_t i = 0; i < nlen; i++)
		buf_putc(out, (char)tolower((unsigned char)t[i]));
	buf_putc(out, ':');
	start = out->len;
	for (size_t i = colon ? (size_t)(colon - t) + 1 : len; i < len; i++) {
		char c = t[i];

		if (c == '\r' || c == '\n')
			continue;	/* unfold */
		if (!is_wsp(c))
			buf_putc(out, c);
		else if (out->len > start && out->data[out->len - 1] != ' ')
			buf_putc(out, ' ');	/* a run: one SP, none first */
	}
	if (out->len > start && out->data[out->len - 1] == ' ')
		out->len--;	/* no WSP at the end of the value */
	buf_puts(out, "\r\n");
}

/* tag - the value of tag name in the unfolded field, malloc'd */
static char *tag(const char *field, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = field; (p = strstr(p, name)) != NULL; p += n) {
		const char *v, *e;

		if (p[n] != '=' || (p != field && p[-1] != ' ' &&
				    p[-1] != ';' && p[-1] != '\t'))
			continue;
		v = p + n + 1;
		e = strchr(v, ';');
		return xstrndup(v, e ? (size_t)(e - v) : strlen(v));
	}
	return NULL;
}

/* ref_verify - check the signature field sig against hs and body with
 * an independent verifier; bh, malloc'd */
static char *ref_verify(const char *sig, const struct headers *hs,
			const struct buf *body, bool simple)
{
	struct buf wire = BUF_INIT(16384), flat = BUF_INIT(16384);
	struct buf data = BUF_INIT(4 * HEADER_BLOCK_MAX);
	struct buf canon = BUF_INIT(2 * 1024 * 1024);
	unsigned char md[32], raw[128];
	char *bh, *h, *b, *save = NULL, b64[64];
	const char *cut;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int n;

	FUZZ_ASSERT(strpbrk(sig, "\r\n") == NULL);
	dkim_unfold_tabs(sig, &wire);
	buf_puts(&flat, sig);
	for (size_t i = 0; i < flat.len; i++)
		if (flat.data[i] == '\t')
			flat.data[i] = ' ';
	bh = tag(buf_str(&flat), "bh");
	h = tag(buf_str(&flat), "h");
	b = tag(buf_str(&flat), "b");
	FUZZ_ASSERT(bh && h && b);
	/* the body hash */
	ref_body(body->data ? body->data : "", body->len, simple, &canon);
	EVP_Digest(canon.data ? canon.data : "", canon.len, md, NULL,
		   EVP_sha256(), NULL);
	EVP_EncodeBlock((unsigned char *)b64, md, 32);
	FUZZ_ASSERT(strcmp(bh, b64) == 0);
	/* the signed data: h= fields bottom-up, then this field sans b= */
	for (char *name = strtok_r(h, ":", &save); name;
	     name = strtok_r(NULL, ":", &save)) {
		size_t before = 0, seen = 0;

		for (const char *q = h; q < name; q += strlen(q) + 1)
			before += strcasecmp(q, name) == 0;
		for (size_t j = hs->n; j-- > 0;) {
			if (!header_is(&hs->v[j], name) || seen++ != before)
				continue;
			ref_header(hs->v[j].text, hs->v[j].len, simple, &data);
			break;
		}
	}
	cut = strstr(buf_str(&wire), "\tb=");
	FUZZ_ASSERT(cut != NULL);
	ref_header(wire.data, (size_t)(cut - wire.data) + 3, simple, &data);
	data.len -= 2;
	EVP_Digest(data.data, data.len, md, NULL, EVP_sha256(), NULL);
	n = EVP_DecodeBlock(raw, (const unsigned char *)b, (int)strlen(b));
	FUZZ_ASSERT(n >= 64);
	FUZZ_ASSERT(ctx != NULL);
	FUZZ_ASSERT(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1);
	FUZZ_ASSERT(EVP_DigestVerify(ctx, raw, 64, md, sizeof(md)) == 1);
	EVP_MD_CTX_free(ctx);
	free(h);
	free(b);
	buf_free(&wire);
	buf_free(&flat);
	buf_free(&data);
	buf_free(&canon);
	return bh;
}

/* cut_here - does a piece end after byte c (the input chooses) */
static bool cut_here(unsigned char c, size_t i)
{
	return ((c * 2654435761u + (unsigned)i) >> 29) < 3;
}

/* sign_fed - feed p to s (how: 0 whole, 1 in pieces, 2 bytewise), sign;
 * the field, malloc'd */
static char *sign_fed(struct dkim_signer *s, const struct headers *hs,
		      const char *p, size_t n, int how)
{
	struct buf out = BUF_INIT(SPOOL_DKIM_SLOT);	/* as submit */
	size_t start = 0;

	dkim_body_reset(s);
	if (how == 0) {
		dkim_body(s, p, n);
	} else if (how == 1) {
		for (size_t i = 0; i < n; i++) {
			if (!cut_here((unsigned char)p[i], i))
				continue;
			dkim_body(s, p + start, i + 1 - start);
			if ((unsigned char)p[i] & 1)
				dkim_body(s, p + i + 1, 0);	/* empty */
			start = i + 1;
		}
		dkim_body(s, p + start, n - start);
	} else {
		for (size_t i = 0; i < n; i++)
			dkim_body(s, p + i, 1);
	}
	FUZZ_ASSERT(dkim_sign(s, hs, &out) == 0);
	FUZZ_ASSERT(out.len > 0);	/* it fits the spool's slot */
	return buf_steal(&out);
}

/* same_bh - the two fields carry the same body hash */
static bool same_bh(const char *a, const char *b)
{
	char *x = tag(a, "bh"), *y = tag(b, "bh");
	bool same = x && y && strcmp(x, y) == 0;

	free(x);
	free(y);
	return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct headers hs = { 0 };
	struct buf body = BUF_INIT(4 * 1024 * 1024);
	const char *p = (const char *)data;
	size_t raw = split(p, size, &hs, &body);
	const char *b = body.data ? body.data : "";

	for (size_t i = 0; i < nsigners; i++) {
		bool simple = i == 1;
		char *whole = sign_fed(signers[i], &hs, b, body.len, 0);
		char *pieces = sign_fed(signers[i], &hs, b, body.len, 1);
		char *bh = ref_verify(whole, &hs, &body, simple);

		FUZZ_ASSERT(same_bh(whole, pieces));
		free(pieces);
		if (!simple && body.len <= BYTEWISE_MAX) {
			char *bytes = sign_fed(signers[i], &hs, b, body.len, 2);

			FUZZ_ASSERT(same_bh(whole, bytes));
			free(bytes);
		}
		if (!simple) {	/* any bytes at all */
			char *rw = sign_fed(signers[i], &hs, p + raw,
					    size - raw, 0);
			char *rp = sign_fed(signers[i], &hs, p + raw,
					    size - raw, 1);

			FUZZ_ASSERT(same_bh(rw, rp));
			free(rw);
			free(rp);
		}
		free(whole);
		free(bh);
	}
	headers_free(&hs);
	buf_free(&body);
	return 0;
}
