/*
 * NAME
 *	tlsinfo - what a relay's TLS session is made of, for diagnostics
 * DESCRIPTION
 *	tls_describe() fills the TLS part of a struct relay_info from an
 *	established OpenSSL session: protocol version, cipher, and the
 *	peer certificate's subject, issuer, expiry and public key pin (the
 *	base64 SHA-256 of its SubjectPublicKeyInfo, the value pin_sha256
 *	takes). tls_pin() computes that pin alone, of the verified
 *	certificate only, for conn.c's check.
 *
 *	After a handshake that verification refused, OpenSSL keeps no peer
 *	certificate, but the chain the relay sent is still in the session:
 *	its first certificate is the relay's own, and what --check-relays
 *	shows, so that a wrong name, an unknown issuer or a changed key
 *	can be seen.
 */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "relay/relay.h"

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

/* tls_peer - the relay's certificate, verified or not; X509_free it */
static X509 *tls_peer(SSL *ssl)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	STACK_OF(X509) *chain;

	if (cert == NULL && (chain = SSL_get_peer_cert_chain(ssl)) != NULL &&
	    sk_X509_num(chain) > 0 && (cert = sk_X509_value(chain, 0)) != NULL)
		X509_up_ref(cert);
	return cert;
}

/* tls_cert_pin - base64 SHA-256 of cert's SubjectPublicKeyInfo */
static int tls_cert_pin(X509 *cert, char *out, size_t len)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int n = cert ? i2d_PUBKEY(X509_get0_pubkey(cert), &der) : -1;
	int rv = -1;

	out[0] = '\0';
	if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(),
				NULL) == 1 && len > 4 * ((mdlen + 2) / 3)) {
		EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
		rv = 0;
	}
	OPENSSL_free(der);
	return rv;
}

/* tls_pin - the pin of the session's verified peer certificate (never of
 * one that verification refused: this is what pin_sha256 is held to) */
int tls_pin(SSL *ssl, char *out, size_t len)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	int rv = tls_cert_pin(cert, out, len);

	X509_free(cert);
	return rv;
}

/* tls_describe - the TLS facts of the session, as far as known: after
 * a handshake that failed before the relay's certificate came, none */
void tls_describe(SSL *ssl, struct relay_info *i)
{
	const SSL_CIPHER *cipher;
	X509 *cert;

	if ((cert = tls_peer(ssl)) == NULL)
		return;
	snprintf(i->tls_version, sizeof(i->tls_version), "%s",
		 SSL_get_version(ssl));
	if ((cipher = SSL_get_current_cipher(ssl)) != NULL)
		snprintf(i->cipher, sizeof(i->cipher), "%s",
			 SSL_CIPHER_get_name(cipher));
	tls_name(X509_get_subject_name(cert), i->subject, sizeof(i->subject));
	tls_name(X509_get_issuer_name(cert), i->issuer, sizeof(i->issuer));
	tls_expiry(cert, i->expires, sizeof(i->expires));
	tls_cert_pin(cert, i->pin, sizeof(i->pin));
	X509_free(cert);
}
