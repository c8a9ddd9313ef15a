/*
 * NAME
 *	tlscache - TLS sessions kept for the next connection to a relay
 * DESCRIPTION
 *	See tlscache.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relay/tlscache.h"
#include "util/buf.h"

#define TLSCACHE_SLOTS	16		/* relays per process */
#define TLSCACHE_MAX	(16 * 1024)	/* a session file */
#define TLSCACHE_MAGIC	"outbox-tls-session-1"
#define TLSCACHE_NAME_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static struct {
	const struct conf_relay *rc;
	SSL_SESSION *s;		/* the newest session, ours */
	SSL_SESSION *saved;	/* the one in the file (or loaded), held:
				 * a freed one's address could come back */
	char key[65];		/* hex SHA-256 of the settings */
} tlscache[TLSCACHE_SLOTS];

/* tlscache_key - hex SHA-256 of every setting a session depends on */
static void tlscache_key(const struct conf_relay *rc, char out[65])
{
	const char *v[] = { rc->host, rc->address, rc->ca_file, rc->ca_path,
		rc->pin_sha256, rc->client_cert, rc->client_key, rc->proxy };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	struct buf b = BUF_INIT(16 * 1024);
	struct stat st;

	buf_printf(&b, "%u|%d|%d", rc->port, (int)rc->tls, rc->tls_min);
	/* a ca_file rewritten in place is another trust store */
	if (rc->ca_file && stat(rc->ca_file, &st) == 0)
		buf_printf(&b, "|%llu:%llu:%lld.%09ld",
			   (unsigned long long)st.st_ino,
			   (unsigned long long)st.st_size,
			   (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		buf_printf(&b, "|%zu:%s", v[i] ? strlen(v[i]) : 0,
			   v[i] ? v[i] : "");
	EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < mdlen && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	buf_free(&b);
}

/* tlscache_name - "tls-NAME": the relay name, ':' and the like as '-' */
static void tlscache_name(const struct conf_relay *rc, const char *suffix,
			  char *out, size_t len)
{
	int n = snprintf(out, len, "tls-%s%s", rc->name, suffix);

	for (int i = 4; i < n && (size_t)i < len; i++)
		if (strchr(TLSCACHE_NAME_CHARS, out[i]) == NULL)
			out[i] = '-';
}

/* tlscache_read - the file's text, if it is ours and small */
static int tlscache_read(int dirfd, const char *name, char *out, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	ssize_t n = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid() && (st.st_mode & 077) == 0)
		n = read(fd, out, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	out[n] = '\0';
	return 0;
}

/* tlscache_fresh - s began at or before now and has not expired; a
 * session from the future (a clock set back, a corrupt file) is not:
 * its times come from the file, so no sum of them may overflow */
static bool tlscache_fresh(const SSL_SESSION *s, time_t now)
{
	long t = SSL_SESSION_get_time(s), d = SSL_SESSION_get_timeout(s);

	return t >= 0 && t <= now && now - t < d;
}

/* tlscache_parse - the session in a tls-NAME file's text */
SSL_SESSION *tlscache_parse(const char *text, const char *key, time_t now)
{
	char head[128];
	SSL_SESSION *s = NULL;
	BIO *b;

	snprintf(head, sizeof(head), "%s %s\n", TLSCACHE_MAGIC, key);
	if (strncmp(text, head, strlen(head)) != 0)
		return NULL;
	if ((b = BIO_new_mem_buf(text + strlen(head), -1)) != NULL)
		s = PEM_read_bio_SSL_SESSION(b, NULL, NULL, NULL);
	BIO_free(b);
	if (s && (!SSL_SESSION_is_resumable(s) || !tlscache_fresh(s, now))) {
		SSL_SESSION_free(s);
		s = NULL;
	}
	return s;
}

/* tlscache_load - the session in tls-NAME, if it fits these settings */
static SSL_SESSION *tlscache_load(const struct conf_relay *rc, int dirfd,
				  const char *key)
{
	char name[256], text[TLSCACHE_MAX];
	SSL_SESSION *s;

	tlscache_name(rc, "", name, sizeof(name));
	if (tlscache_read(dirfd, name, text, sizeof(text)) < 0)
		return NULL;
	s = tlscache_parse(text, key, time(NULL));
	explicit_bzero(text, sizeof(text));
	return s;
}

/* tlscache_slot - the session slot of rc, filled from the spool once */
SSL_SESSION **tlscache_slot(const struct conf_relay *rc, int dirfd)
{
	for (size_t i = 0; i < TLSCACHE_SLOTS; i++) {
		if (tlscache[i].rc == rc)
			return &tlscache[i].s;
		if (tlscache[i].rc)
			continue;
		tlscache[i].rc = rc;
		tlscache_key(rc, tlscache[i].key);
		if (dirfd >= 0 && rc->client_cert == NULL)
			tlscache[i].s = tlscache_load(rc, dirfd,
						      tlscache[i].key);
		if ((tlscache[i].saved = tlscache[i].s) != NULL)
			SSL_SESSION_up_ref(tlscache[i].saved);
		return &tlscache[i].s;
	}
	return NULL;
}

/* der_item - the header and content lengths of the DER item at p, of
 * at most n bytes; -1 unless a one-byte tag and a definite length */
static int der_item(const unsigned char *p, size_t n, size_t *hl, size_t *len)
{
	size_t k, v = 0;

	if (n < 2 || (p[0] & 0x1f) == 0x1f)
		return -1;
	if (p[1] < 0x80) {
		*hl = 2;
		v = p[1];
	} else {
		k = p[1] & 0x7f;
		if (k == 0 || k > 3 || n < 2 + k)
			return -1;
		for (size_t i = 0; i < k; i++)
			v = v << 8 | p[2 + i];
		*hl = 2 + k;
	}
	if (v > n - *hl)
		return -1;
	*len = v;
	return 0;
}

/* tlscache_strip_peer - the session's DER (SSL_SESSION_ASN1, a SEQUENCE)
 * without its [3] item, the relay's certificate, in place: a resumed
 * session does not need it, and decoding its public key is most of what
 * reading the file costs (~1 ms of OpenSSL 3.0's decoder setup, against
 * 0.04 ms without). Its new length; 0, the DER untouched, if the layout
 * is not as expected */
size_t tlscache_strip_peer(unsigned char *der, size_t n)
{
	size_t hl, len, w = 0, k;
	unsigned char *body;

	if (der_item(der, n, &hl, &len) < 0 || der[0] != 0x30 ||
	    hl + len != n)
		return 0;
	body = xmalloc(len + 1);
	for (size_t r = hl; r < n; r += k) {
		size_t ihl, ilen;

		if (der_item(der + r, n - r, &ihl, &ilen) < 0) {
			free(body);
			return 0;
		}
		k = ihl + ilen;
		if (der[r] != 0xa3) {	/* [3] EXPLICIT Certificate */
			memcpy(body + w, der + r, k);
			w += k;
		}
	}
	k = w < 0x80 ? 2 : w < 0x100 ? 3 : w < 0x10000 ? 4 : 5;
	der[0] = 0x30;
	der[1] = (unsigned char)(k == 2 ? w : 0x80 | (k - 2));
	for (size_t i = 2; i < k; i++)
		der[i] = (unsigned char)(w >> 8 * (k - 1 - i));
	memcpy(der + k, body, w);	/* k + w <= n: it only shrank */
	explicit_bzero(body, w);	/* it holds the secret */
	free(body);
	return k + w;
}

/* tlscache_pem - the session as the file's PEM, into b */
int tlscache_pem(SSL_SESSION *s, bool strip, BIO *b)
{
	unsigned char *der = NULL;
	int n = i2d_SSL_SESSION(s, &der), rv;
	size_t k;

	if (n <= 0)
		return -1;
	k = strip ? tlscache_strip_peer(der, (size_t)n) : 0;
	rv = PEM_write_bio(b, PEM_STRING_SSL_SESSION, "", der,
			   (long)(k ? k : (size_t)n)) > 0 ? 0 : -1;
	OPENSSL_clear_free(der, (size_t)n);	/* it holds the secret */
	return rv;
}

/* tlscache_write - text to tls-NAME through a temporary file */
static void tlscache_write(const struct conf_relay *rc, int dirfd,
			   const char *text, size_t n)
{
	char name[256], tmp[256], pid[32];
	int fd;
	bool ok;

	snprintf(pid, sizeof(pid), ".%ld.tmp", (long)getpid());
	tlscache_name(rc, "", name, sizeof(name));
	tlscache_name(rc, pid, tmp, sizeof(tmp));
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ok = fchmod(fd, 0600) == 0 && write(fd, text, n) == (ssize_t)n;
	if (close(fd) < 0 || !ok || renameat(dirfd, tmp, dirfd, name) < 0)
		unlinkat(dirfd, tmp, 0);
}

/* tlscache_save - write the slot's session if it is new */
void tlscache_save(const struct conf_relay *rc, int dirfd)
{
	BIO *b;
	char *pem = NULL;
	long n;

	for (size_t i = 0; i < TLSCACHE_SLOTS; i++) {
		if (tlscache[i].rc != rc)
			continue;
		if (tlscache[i].s == NULL || tlscache[i].s ==
		    tlscache[i].saved || dirfd < 0 || rc->client_cert)
			return;
		if ((b = BIO_new(BIO_s_mem())) == NULL)
			return;
		BIO_puts(b, TLSCACHE_MAGIC " ");
		BIO_puts(b, tlscache[i].key);
		BIO_puts(b, "\n");
		if (tlscache_pem(tlscache[i].s, rc->pin_sha256 == NULL, b) ==
		    0 &&
		    (n = BIO_get_mem_data(b, &pem)) > 0 && n < TLSCACHE_MAX)
			tlscache_write(rc, dirfd, pem, (size_t)n);
		SSL_SESSION_free(tlscache[i].saved);
		SSL_SESSION_up_ref(tlscache[i].s);
		tlscache[i].saved = tlscache[i].s;
		BIO_free(b);
		return;
	}
}
