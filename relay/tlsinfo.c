/*
 * NAME
 *	tlsinfo - what a relay's TLS session is made of, for diagnostics
 * DESCRIPTION
 *	tls_describe() fills the TLS part of a struct relay_info from the
 *	OpenSSL session inside a libcurl handle: protocol version, cipher,
 *	and the peer certificate's subject, issuer, expiry and public key
 *	pin (the base64 SHA-256 of its SubjectPublicKeyInfo, the value
 *	pin_sha256 takes).
 *
 *	outbox does not link libssl (libcurl brings it in when it is
 *	loaded), so the few libssl functions are looked up in the copy
 *	libcurl loaded; the certificate functions are libcrypto's, which
 *	outbox links and which both share.
 */
#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "relay/curl.h"
#include "relay/relay.h"

#define LIBSSL_SONAME "libssl.so.3"

struct ssl_api {
	const char *(*get_version)(const void *ssl);
	const void *(*get_current_cipher)(const void *ssl);
	const char *(*cipher_get_name)(const void *cipher);
	X509 *(*get1_peer_certificate)(const void *ssl);
};

/* tls_ssl_api - the libssl functions, from the already loaded library */
static int tls_ssl_api(struct ssl_api *a)
{
	void *lib = dlopen(LIBSSL_SONAME, RTLD_NOW | RTLD_NOLOAD);
	void *f[4];

	if (lib == NULL)
		return -1;
	f[0] = dlsym(lib, "SSL_get_version");
	f[1] = dlsym(lib, "SSL_get_current_cipher");
	f[2] = dlsym(lib, "SSL_CIPHER_get_name");
	f[3] = dlsym(lib, "SSL_get1_peer_certificate");
	dlclose(lib);		/* libcurl keeps libssl loaded */
	if (!f[0] || !f[1] || !f[2] || !f[3])
		return -1;
	memcpy(&a->get_version, &f[0], sizeof(f[0]));
	memcpy(&a->get_current_cipher, &f[1], sizeof(f[1]));
	memcpy(&a->cipher_get_name, &f[2], sizeof(f[2]));
	memcpy(&a->get1_peer_certificate, &f[3], sizeof(f[3]));
	return 0;
}

/* tls_name - a distinguished name on one line */
static void tls_name(const X509_NAME *name, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	out[0] = '\0';
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
	n = BIO_read(b, out, (int)len - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/* tls_expiry - "Nov 30 12:00:00 2026 GMT" */
static void tls_expiry(const X509 *cert, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	out[0] = '\0';
	if (b == NULL)
		return;
	ASN1_TIME_print(b, X509_get0_notAfter(cert));
	n = BIO_read(b, out, (int)len - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/* tls_pin - base64 SHA-256 of the SubjectPublicKeyInfo */
static void tls_pin(X509 *cert, char *out, size_t len)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int n = i2d_PUBKEY(X509_get0_pubkey(cert), &der);

	out[0] = '\0';
	if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(),
				NULL) == 1 && len > 4 * ((mdlen + 2) / 3))
		EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	OPENSSL_free(der);
}

/* tls_describe - the TLS facts of the session in h, as far as known */
void tls_describe(const struct curl_api *api, CURL *h, struct relay_info *i)
{
	struct curl_tlssessioninfo *ts = NULL;
	struct ssl_api ssl;
	const void *cipher;
	X509 *cert;

	if (api->easy_getinfo(h, CURLINFO_TLS_SSL_PTR, &ts) != CURLE_OK ||
	    ts == NULL || ts->backend != CURLSSLBACKEND_OPENSSL ||
	    ts->internals == NULL || tls_ssl_api(&ssl) < 0)
		return;
	snprintf(i->tls_version, sizeof(i->tls_version), "%s",
		 ssl.get_version(ts->internals));
	if ((cipher = ssl.get_current_cipher(ts->internals)) != NULL)
		snprintf(i->cipher, sizeof(i->cipher), "%s",
			 ssl.cipher_get_name(cipher));
	if ((cert = ssl.get1_peer_certificate(ts->internals)) == NULL)
		return;
	tls_name(X509_get_subject_name(cert), i->subject, sizeof(i->subject));
	tls_name(X509_get_issuer_name(cert), i->issuer, sizeof(i->issuer));
	tls_expiry(cert, i->expires, sizeof(i->expires));
	tls_pin(cert, i->pin, sizeof(i->pin));
	X509_free(cert);
}
