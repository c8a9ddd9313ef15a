/*
 * NAME
 *	ossl - OpenSSL's libssl and libcrypto, loaded on first use
 * DESCRIPTION
 *	Linking libssl and libcrypto costs every start of outbox about a
 *	millisecond before main(): libcrypto is built with BIND_NOW, so the
 *	dynamic loader resolves its 4,000-odd symbol relocations at once.
 *	That was most of what -odq, -odb, mailq and -bv cost, and none of
 *	them needs OpenSSL (unless a [dkim] key signs the submission).
 *
 *	So outbox does not link them. This file defines each OpenSSL
 *	function outbox calls, under its own name and with the prototype
 *	of OpenSSL's header, which is included: the compiler checks that
 *	every definition here agrees with OpenSSL's declaration. Each one
 *	calls through a pointer that dlsym() fills in on the first call,
 *	and the first call of any of them loads libssl.so.3 (which brings
 *	libcrypto.so.3). Since the executable does not export these names,
 *	the libraries' own references still bind to each other, never to
 *	these wrappers. Functions OpenSSL offers only as macros (SSL_CTX_
 *	set_min_proto_version, BIO_get_mem_data, OPENSSL_free...) expand to
 *	the ones defined here.
 *
 *	To call another OpenSSL function, add one line below; the link fails
 *	until it is there.
 *
 *	ossl_warm() does the dearest part of the first TLS connection ahead
 *	of time, in a thread, while the caller goes on reading and spooling
 *	the message: loading the libraries (~1 ms of relocations),
 *	OpenSSL's initialisation, and a first SSL_CTX_new() (~1 ms: OpenSSL
 *	3.0 fetches every algorithm it may need then, and caches them for
 *	the next one). The thread calls OpenSSL through its own dlsym()
 *	pointers, never through the wrappers below, and the first wrapper
 *	the process calls waits for it (ossl_warm_wait()), as do fork() and
 *	exit(): OpenSSL is never used by two threads at once, and no thread
 *	is left running where only one may be. It asks OpenSSL for no exit
 *	handler, so none can run under it. If it fails, nothing is lost:
 *	the first call does the work, and reports the error, as before.
 * DIAGNOSTICS
 *	If libssl.so.3 or a function in it cannot be found, outbox exits 72
 *	(EX_OSFILE) naming it; a message already committed stays queued.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sysexits.h>

#include "util/log.h"
#include "util/ossl.h"

#define OSSL_SONAME	"libssl.so.3"

static pthread_t warm_thread;
static bool warm_running;	/* started, not joined: the main thread's */
static atomic_bool warm_done;	/* the thread has finished its work */
static void *warm_lib;		/* the thread's handle, kept */

/* ossl_warm_sym - name in lib, as the function pointer *fp */
static bool ossl_warm_sym(void *lib, const char *name, void *fp)
{
	void *f = dlsym(lib, name);

	memcpy(fp, &f, sizeof(f));
	return f != NULL;
}

/* ossl_warm_run - the thread: load, initialise, one context */
static void *ossl_warm_run(void *arg)
{
	int (*init)(uint64_t, const OPENSSL_INIT_SETTINGS *);
	const SSL_METHOD *(*method)(void);
	SSL_CTX *(*ctx_new)(const SSL_METHOD *);
	void (*ctx_free)(SSL_CTX *);

	(void)arg;
	if ((warm_lib = dlopen(OSSL_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL ||
	    !ossl_warm_sym(warm_lib, "OPENSSL_init_ssl", &init) ||
	    !ossl_warm_sym(warm_lib, "TLS_client_method", &method) ||
	    !ossl_warm_sym(warm_lib, "SSL_CTX_new", &ctx_new) ||
	    !ossl_warm_sym(warm_lib, "SSL_CTX_free", &ctx_free)) {
		atomic_store(&warm_done, true);	/* the first call will say */
		return NULL;
	}
	if (init(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_LOAD_SSL_STRINGS |
		 OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) == 1)
		ctx_free(ctx_new(method()));
	atomic_store(&warm_done, true);
	return NULL;
}

/* ossl_warming - the warm-up thread is still at work */
bool ossl_warming(void)
{
	return warm_running && !atomic_load(&warm_done);
}

/* ossl_warm_wait - the warm-up is over (or was never started) */
static void ossl_warm_wait(void)
{
	if (!warm_running)
		return;
	warm_running = false;
	pthread_join(warm_thread, NULL);
}

/* ossl_warm - start loading OpenSSL in a thread; see above */
void ossl_warm(void)
{
	static bool tried;
	sigset_t all, old;

	if (tried)
		return;
	tried = true;
	if (atexit(ossl_warm_wait) != 0 ||
	    pthread_atfork(ossl_warm_wait, NULL, NULL) != 0)
		return;		/* no thread without its waits */
	sigfillset(&all);	/* signals are the main thread's */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	warm_running = pthread_create(&warm_thread, NULL, ossl_warm_run,
				      NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ossl_sym - the address of name in libssl or libcrypto; dies without */
static void *ossl_sym(const char *name)
{
	static void *lib;
	void *f;

	ossl_warm_wait();
	if (lib == NULL && (lib = dlopen(OSSL_SONAME, RTLD_NOW | RTLD_LOCAL)) ==
	    NULL)
		log_die(EX_OSFILE, "cannot load %s (OpenSSL): %s", OSSL_SONAME,
			dlerror());
	if ((f = dlsym(lib, name)) == NULL)
		log_die(EX_OSFILE, "%s has no %s: %s", OSSL_SONAME, name,
			dlerror());
	return f;
}

/* ossl_no_passphrase - OpenSSL's passphrase callback: an encrypted key
 * fails at once instead of prompting on the terminal */
int ossl_no_passphrase(char *buf, int size, int rw, void *arg)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)arg;
	return 0;
}

/*
 * The wrappers take OpenSSL's parameter lists as macro arguments, which
 * cannot be parenthesised, and name the parameters shortly rather than
 * as each header does: the compiler still checks every type.
 * NOLINTBEGIN(bugprone-macro-parentheses)
 * NOLINTBEGIN(readability-inconsistent-declaration-parameter-name)
 */

/* a function returning ret, its pointer bound on the first call */
#define OSSL(ret, name, params, args) \
	ret name params \
	{ \
		static ret (*fn) params; \
		\
		if (fn == NULL) { \
			void *ossl_p = ossl_sym(#name); \
			\
			memcpy(&fn, &ossl_p, sizeof(fn)); \
		} \
		return fn args; \
	}

/* the same for a function returning nothing */
#define OSSL_VOID(name, params, args) \
	void name params \
	{ \
		static void (*fn) params; \
		\
		if (fn == NULL) { \
			void *ossl_p = ossl_sym(#name); \
			\
			memcpy(&fn, &ossl_p, sizeof(fn)); \
		} \
		fn args; \
	}

/* libcrypto: memory, errors, BIO */
OSSL_VOID(CRYPTO_free, (void *p, const char *f, int l), (p, f, l))
OSSL_VOID(CRYPTO_clear_free, (void *p, size_t n, const char *f, int l),
	  (p, n, f, l))
OSSL(void *, CRYPTO_memdup, (const void *s, size_t n, const char *f, int l),
     (s, n, f, l))
OSSL_VOID(ERR_clear_error, (void), ())
OSSL(unsigned long, ERR_peek_last_error, (void), ())
OSSL(const char *, ERR_reason_error_string, (unsigned long e), (e))
OSSL(const BIO_METHOD *, BIO_s_mem, (void), ())
OSSL(BIO *, BIO_new, (const BIO_METHOD *t), (t))
OSSL(BIO *, BIO_new_mem_buf, (const void *b, int n), (b, n))
OSSL(int, BIO_free, (BIO *b), (b))
OSSL(int, BIO_read, (BIO *b, void *d, int n), (b, d, n))
OSSL(int, BIO_puts, (BIO *b, const char *s), (b, s))
OSSL(long, BIO_ctrl, (BIO *b, int c, long l, void *p), (b, c, l, p))
OSSL(int, PEM_write_bio, (BIO *b, const char *name, const char *hdr,
			  const unsigned char *d, long n), (b, name, hdr, d, n))

/* libcrypto: digests, signatures, keys, encodings */
OSSL(const EVP_MD *, EVP_md5, (void), ())
OSSL(const EVP_MD *, EVP_sha256, (void), ())
OSSL(int, EVP_Digest, (const void *d, size_t n, unsigned char *md,
		       unsigned int *s, const EVP_MD *t, ENGINE *e),
     (d, n, md, s, t, e))
OSSL(EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
OSSL_VOID(EVP_MD_CTX_free, (EVP_MD_CTX *c), (c))
OSSL(int, EVP_DigestInit_ex, (EVP_MD_CTX *c, const EVP_MD *t, ENGINE *e),
     (c, t, e))
OSSL(int, EVP_DigestUpdate, (EVP_MD_CTX *c, const void *d, size_t n),
     (c, d, n))
OSSL(int, EVP_DigestFinal_ex, (EVP_MD_CTX *c, unsigned char *md,
			       unsigned int *s), (c, md, s))
OSSL(int, EVP_DigestSignInit, (EVP_MD_CTX *c, EVP_PKEY_CTX **pc,
			       const EVP_MD *t, ENGINE *e, EVP_PKEY *k),
     (c, pc, t, e, k))
OSSL(int, EVP_DigestSign, (EVP_MD_CTX *c, unsigned char *sig, size_t *sl,
			   const unsigned char *tbs, size_t n),
     (c, sig, sl, tbs, n))
OSSL(int, EVP_DigestVerifyInit, (EVP_MD_CTX *c, EVP_PKEY_CTX **pc,
				 const EVP_MD *t, ENGINE *e, EVP_PKEY *k),
     (c, pc, t, e, k))
OSSL(int, EVP_DigestVerify, (EVP_MD_CTX *c, const unsigned char *sig,
			     size_t sl, const unsigned char *tbs, size_t n),
     (c, sig, sl, tbs, n))
OSSL(unsigned char *, HMAC, (const EVP_MD *t, const void *k, int kl,
			     const unsigned char *d, size_t n,
			     unsigned char *md, unsigned int *ml),
     (t, k, kl, d, n, md, ml))
OSSL(int, EVP_EncodeBlock, (unsigned char *t, const unsigned char *f, int n),
     (t, f, n))
OSSL(int, EVP_DecodeBlock, (unsigned char *t, const unsigned char *f, int n),
     (t, f, n))
OSSL_VOID(EVP_PKEY_free, (EVP_PKEY *k), (k))
OSSL(int, EVP_PKEY_get_bits, (const EVP_PKEY *k), (k))
OSSL(int, EVP_PKEY_is_a, (const EVP_PKEY *k, const char *n), (k, n))
OSSL(int, EVP_PKEY_get_raw_public_key, (const EVP_PKEY *k, unsigned char *p,
					size_t *n), (k, p, n))
OSSL(EVP_PKEY *, EVP_PKEY_new_raw_private_key, (int t, ENGINE *e,
						const unsigned char *p,
						size_t n), (t, e, p, n))
OSSL(EVP_PKEY *, PEM_read_bio_PrivateKey, (BIO *b, EVP_PKEY **k,
					   pem_password_cb *cb, void *u),
     (b, k, cb, u))
OSSL(int, i2d_PUBKEY, (const EVP_PKEY *k, unsigned char **pp), (k, pp))

/* libcrypto: certificates */
OSSL_VOID(X509_free, (X509 *x), (x))
OSSL(int, X509_up_ref, (X509 *x), (x))
OSSL(int, OPENSSL_sk_num, (const OPENSSL_STACK *k), (k))
OSSL(void *, OPENSSL_sk_value, (const OPENSSL_STACK *k, int i), (k, i))
OSSL(X509_NAME *, X509_get_subject_name, (const X509 *x), (x))
OSSL(X509_NAME *, X509_get_issuer_name, (const X509 *x), (x))
OSSL(const ASN1_TIME *, X509_get0_notAfter, (const X509 *x), (x))
OSSL(EVP_PKEY *, X509_get0_pubkey, (const X509 *x), (x))
OSSL(int, X509_NAME_print_ex, (BIO *b, const X509_NAME *n, int i,
			       unsigned long f), (b, n, i, f))
OSSL(int, ASN1_TIME_print, (BIO *b, const ASN1_TIME *t), (b, t))
OSSL(const char *, X509_verify_cert_error_string, (long n), (n))
OSSL(const char *, X509_get_default_cert_dir, (void), ())
OSSL(const char *, X509_get_default_cert_dir_env, (void), ())
OSSL(int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM *p,
					  const char *ip), (p, ip))
OSSL(X509_STORE *, X509_STORE_CTX_get0_store, (const X509_STORE_CTX *x), (x))
OSSL(int, X509_STORE_load_file, (X509_STORE *s, const char *f), (s, f))
OSSL_VOID(X509_STORE_CTX_set_error, (X509_STORE_CTX *x, int e), (x, e))
OSSL(int, X509_verify_cert, (X509_STORE_CTX *x), (x))

/* libssl: contexts */
OSSL(const SSL_METHOD *, TLS_client_method, (void), ())
OSSL(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *m), (m))
OSSL_VOID(SSL_CTX_free, (SSL_CTX *c), (c))
OSSL(long, SSL_CTX_ctrl, (SSL_CTX *c, int cmd, long l, void *p),
     (c, cmd, l, p))
OSSL_VOID(SSL_CTX_set_verify, (SSL_CTX *c, int m, SSL_verify_cb cb),
	  (c, m, cb))
OSSL_VOID(SSL_CTX_set_cert_verify_callback, (SSL_CTX *c,
					     int (*cb)(X509_STORE_CTX *,
						       void *), void *a),
	  (c, cb, a))
OSSL_VOID(SSL_CTX_sess_set_new_cb, (SSL_CTX *c, int (*cb)(struct ssl_st *,
							   SSL_SESSION *)),
	  (c, cb))
OSSL(int, SSL_CTX_load_verify_locations, (SSL_CTX *c, const char *f,
					  const char *d), (c, f, d))
OSSL(int, SSL_CTX_set_default_verify_dir, (SSL_CTX *c), (c))
OSSL(int, SSL_CTX_set_default_verify_file, (SSL_CTX *c), (c))
OSSL(int, SSL_CTX_use_certificate_chain_file, (SSL_CTX *c, const char *f),
     (c, f))
OSSL(int, SSL_CTX_use_PrivateKey_file, (SSL_CTX *c, const char *f, int t),
     (c, f, t))
OSSL(int, SSL_CTX_check_private_key, (const SSL_CTX *c), (c))
OSSL_VOID(SSL_CTX_set_default_passwd_cb, (SSL_CTX *c, pem_password_cb *cb),
	  (c, cb))

/* libssl: connections */
OSSL(SSL *, SSL_new, (SSL_CTX *c), (c))
OSSL_VOID(SSL_free, (SSL *s), (s))
OSSL(long, SSL_ctrl, (SSL *s, int cmd, long l, void *p), (s, cmd, l, p))
OSSL(int, SSL_set_fd, (SSL *s, int fd), (s, fd))
OSSL(int, SSL_set1_host, (SSL *s, const char *h), (s, h))
OSSL_VOID(SSL_set_hostflags, (SSL *s, unsigned int f), (s, f))
OSSL(X509_VERIFY_PARAM *, SSL_get0_param, (SSL *s), (s))
OSSL(int, SSL_set_ex_data, (SSL *s, int i, void *d), (s, i, d))
OSSL(void *, SSL_get_ex_data, (const SSL *s, int i), (s, i))
OSSL(int, SSL_set_session, (SSL *s, SSL_SESSION *ss), (s, ss))
OSSL(int, SSL_connect, (SSL *s), (s))
OSSL(int, SSL_get_error, (const SSL *s, int r), (s, r))
OSSL(long, SSL_get_verify_result, (const SSL *s), (s))
OSSL(int, SSL_read_ex, (SSL *s, void *b, size_t n, size_t *r), (s, b, n, r))
OSSL(int, SSL_write_ex, (SSL *s, const void *b, size_t n, size_t *w),
     (s, b, n, w))
OSSL(int, SSL_session_reused, (const SSL *s), (s))
OSSL(const char *, SSL_get_version, (const SSL *s), (s))
OSSL(const SSL_CIPHER *, SSL_get_current_cipher, (const SSL *s), (s))
OSSL(const char *, SSL_CIPHER_get_name, (const SSL_CIPHER *c), (c))
OSSL(X509 *, SSL_get1_peer_certificate, (const SSL *s), (s))
OSSL(STACK_OF(X509) *, SSL_get_peer_cert_chain, (const SSL *s), (s))

/* libssl: sessions */
OSSL_VOID(SSL_SESSION_free, (SSL_SESSION *s), (s))
OSSL(int, SSL_SESSION_up_ref, (SSL_SESSION *s), (s))
OSSL(SSL_SESSION *, SSL_SESSION_dup, (const SSL_SESSION *s), (s))
OSSL(int, SSL_SESSION_is_resumable, (const SSL_SESSION *s), (s))
OSSL(X509 *, SSL_SESSION_get0_peer, (SSL_SESSION *s), (s))
OSSL(long, SSL_SESSION_get_time, (const SSL_SESSION *s), (s))
OSSL(long, SSL_SESSION_get_timeout, (const SSL_SESSION *s), (s))
OSSL(SSL_SESSION *, PEM_read_bio_SSL_SESSION, (BIO *b, SSL_SESSION **s,
					       pem_password_cb *cb, void *u),
     (b, s, cb, u))
OSSL(int, PEM_write_bio_SSL_SESSION, (BIO *b, const SSL_SESSION *s), (b, s))
OSSL(int, i2d_SSL_SESSION, (const SSL_SESSION *s, unsigned char **p), (s, p))

/* NOLINTEND(readability-inconsistent-declaration-parameter-name) */
/* NOLINTEND(bugprone-macro-parentheses) */
