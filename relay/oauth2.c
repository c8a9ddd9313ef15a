/*
 * NAME
 *	oauth2 - access tokens for XOAUTH2 and OAUTHBEARER, from a refresh
 *	token
 * DESCRIPTION
 *	See oauth2.h. Three parts: a strict JSON reader for the token
 *	endpoint's reply, the cache file (read, write, lock), and the
 *	refresh itself, which decides between them under the lock.
 *
 *	Secrets (the tokens, the client secret, the form body, the reply)
 *	are wiped before their memory is freed and never reach a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "relay/curl.h"
#include "relay/oauth2.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/utf8.h"

#define OAUTH2_REPLY_MAX	(64 * 1024)	/* token endpoint reply */
#define OAUTH2_CACHE_MAX	(64 * 1024)	/* the cache file */
#define OAUTH2_TOKEN_MAX	(16 * 1024)	/* one token */
#define OAUTH2_FORM_MAX		(64 * 1024)	/* the POST body */
#define OAUTH2_NAME_MAX		200	/* relay name in a file name */
#define OAUTH2_NAME_CHARS	"abcdefghijklmnopqrstuvwxyz" \
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
#define OAUTH2_DEPTH_MAX	32	/* nesting skipped in a reply */
#define OAUTH2_MARGIN		60	/* refresh this long before expiry */
#define OAUTH2_EXPIRES_DEFAULT	3600
#define OAUTH2_EXPIRES_MAX	86400

static oauth2_post_fn *oauth2_post_hook;

/* oauth2_set_post - the unit tests' stand-in for HTTPS (NULL: HTTPS) */
void oauth2_set_post(oauth2_post_fn *fn)
{
	oauth2_post_hook = fn;
}

/* oauth2_wipe - zero and free a secret string */
static void oauth2_wipe(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* oauth2_buf_wipe - zero a buffer's storage, then free it */
static void oauth2_buf_wipe(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

/* oauth2_is_token - printable ASCII without spaces, not empty: a token
 * goes into an SMTP command and into a line of the cache */
static bool oauth2_is_token(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; s[n]; n++)
		if ((unsigned char)s[n] <= ' ' || (unsigned char)s[n] >= 0x7f)
			return false;
	return n <= OAUTH2_TOKEN_MAX;
}

/*
 * The JSON reply
 */

/* the reply being read */
struct json {
	const char *p;		/* next byte */
	const char *end;
};

/* json_ws - skip whitespace; the next byte, or -1 at the end */
static int json_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
	return j->p < j->end ? (unsigned char)*j->p : -1;
}

/* json_eat - consume c after whitespace; -1 if something else is next */
static int json_eat(struct json *j, char c)
{
	if (json_ws(j) != (unsigned char)c)
		return -1;
	j->p++;
	return 0;
}

/* json_literal - true, false or null */
static int json_literal(struct json *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

/* json_hex4 - the four hex digits of a \u escape */
static int json_hex4(struct json *j, unsigned *v)
{
	*v = 0;
	if (j->end - j->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = *j->p++;

		if (c >= '0' && c <= '9')
			*v = *v << 4 | (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v = *v << 4 | (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v = *v << 4 | (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* json_unicode - the code point of a \u escape (after the u), a
 * surrogate pair joined; NUL and lone surrogates are refused */
static int json_unicode(struct json *j, unsigned *cp)
{
	unsigned lo;

	if (json_hex4(j, cp) < 0 || *cp == 0)
		return -1;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return -1;
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 0;
	if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
		return -1;
	j->p += 2;
	if (json_hex4(j, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
		return -1;
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

/* json_put_utf8 - a code point as UTF-8 */
static int json_put_utf8(struct buf *out, unsigned cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		n = 4;
	}
	for (size_t i = 1; i < n; i++) {
		unsigned shift = 6 * (unsigned)(n - 1 - i);

		u[i] = (unsigned char)(0x80 | ((cp >> shift) & 0x3f));
	}
	return buf_append(out, u, n);
}

/* json_escape - one escape (after the backslash), decoded into out */
static int json_escape(struct json *j, struct buf *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k;
	unsigned cp;

	if (j->p == j->end)
		return -1;
	if (*j->p == 'u') {
		j->p++;
		if (json_unicode(j, &cp) < 0)
			return -1;
		return json_put_utf8(out, cp);
	}
	if (*j->p == '\0' || (k = strchr(from, *j->p)) == NULL)
		return -1;
	j->p++;
	return buf_putc(out, to[k - from]);
}

/* json_string - a string, decoded into out */
static int json_string(struct json *j, struct buf *out)
{
	if (json_eat(j, '"') < 0)
		return -1;
	while (j->p < j->end) {
		const unsigned char *c = (const unsigned char *)j->p;
		size_t n;

		if (*c == '"') {
			j->p++;
			return 0;
		}
		if (*c == '\\') {
			j->p++;
			if (json_escape(j, out) < 0)
				return -1;
			continue;
		}
		n = utf8_len(c, (size_t)(j->end - j->p));
		if (*c < 0x20 || n == 0 || buf_append(out, c, n) < 0)
			return -1;
		j->p += n;
	}
	return -1;
}

/* json_digits - skip digits; how many there were */
static size_t json_digits(struct json *j)
{
	const char *start = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return (size_t)(j->p - start);
}

/* json_number - -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; its
 * value in v unless v is NULL */
static int json_number(struct json *j, double *v)
{
	const char *start;
	char text[64];
	size_t n;

	json_ws(j);
	start = j->p;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (json_digits(j) == 0)
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (json_digits(j) == 0)
			return -1;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (json_digits(j) == 0)
			return -1;
	}
	if (v == NULL)
		return 0;
	if ((n = (size_t)(j->p - start)) >= sizeof(text))
		return -1;
	memcpy(text, start, n);
	text[n] = '\0';
	*v = strtod(text, NULL);
	return 0;
}

/* NOLINTBEGIN(misc-no-recursion): depth stops at OAUTH2_DEPTH_MAX */
static int json_skip(struct json *j, int depth);

/* json_skip_items - the rest of an array or object after its bracket */
static int json_skip_items(struct json *j, char close, int depth)
{
	struct buf key = BUF_INIT(OAUTH2_REPLY_MAX);
	int rc = -1;

	if (json_ws(j) == (unsigned char)close) {
		j->p++;
		return 0;
	}
	for (;;) {
		buf_reset(&key);
		if (close == '}' && (json_string(j, &key) < 0 ||
				     json_eat(j, ':') < 0))
			break;
		if (json_skip(j, depth) < 0)
			break;
		if (json_eat(j, ',') == 0)
			continue;
		rc = json_eat(j, close);
		break;
	}
	oauth2_buf_wipe(&key);
	return rc;
}

/* json_skip - any value, nested at most OAUTH2_DEPTH_MAX deep */
static int json_skip(struct json *j, int depth)
{
	struct buf s = BUF_INIT(OAUTH2_REPLY_MAX);
	int c = json_ws(j), rc;

	switch (c) {
	case '"':
		rc = json_string(j, &s);
		oauth2_buf_wipe(&s);
		return rc;
	case '{':
	case '[':
		if (depth >= OAUTH2_DEPTH_MAX)
			return -1;
		j->p++;
		return json_skip_items(j, c == '{' ? '}' : ']', depth + 1);
	case 't':
		return json_literal(j, "true");
	case 'f':
		return json_literal(j, "false");
	case 'n':
		return json_literal(j, "null");
	default:
		return json_number(j, NULL);
	}
}
/* NOLINTEND(misc-no-recursion) */

/* json_text - a string member outbox keeps; null leaves it NULL */
static int json_text(struct json *j, char **slot)
{
	struct buf v = BUF_INIT(OAUTH2_REPLY_MAX);

	if (json_ws(j) == 'n')
		return json_literal(j, "null");
	if (json_string(j, &v) < 0) {
		oauth2_buf_wipe(&v);
		return -1;
	}
	*slot = buf_steal(&v);
	return 0;
}

/* json_expires - expires_in: a number, or digits in a string (some
 * endpoints quote it), clamped to [0, OAUTH2_EXPIRES_MAX] */
static int json_expires(struct json *j, long *out)
{
	struct buf s = BUF_INIT(32);
	double v = 0;
	int rc = 0;

	if (json_ws(j) == 'n')
		return json_literal(j, "null");
	if (json_ws(j) != '"') {
		rc = json_number(j, &v);
	} else if (json_string(j, &s) < 0 || s.len == 0 ||
		   strspn(s.data, "0123456789") != s.len) {
		rc = -1;
	} else {
		v = strtod(s.data, NULL);
	}
	buf_free(&s);
	if (rc == 0)
		*out = v < 0 ? 0 : v > OAUTH2_EXPIRES_MAX ?
		    OAUTH2_EXPIRES_MAX : (long)v;
	return rc;
}

/* json_slot - where the string member key goes, NULL if not kept */
static char **json_slot(struct oauth2_reply *r, const char *key)
{
	if (strcmp(key, "access_token") == 0)
		return &r->access_token;
	if (strcmp(key, "refresh_token") == 0)
		return &r->refresh_token;
	if (strcmp(key, "token_type") == 0)
		return &r->token_type;
	if (strcmp(key, "error") == 0)
		return &r->error;
	if (strcmp(key, "error_description") == 0)
		return &r->error_description;
	return NULL;
}

/* json_member - one "key": value of the reply; a member outbox keeps
 * may appear only once */
static int json_member(struct json *j, struct oauth2_reply *r,
		       bool *had_expires)
{
	struct buf key = BUF_INIT(OAUTH2_REPLY_MAX);
	char **slot;
	int rc = -1;

	if (json_string(j, &key) < 0 || json_eat(j, ':') < 0)
		goto done;
	if (strcmp(buf_str(&key), "expires_in") == 0) {
		if (!*had_expires)
			rc = json_expires(j, &r->expires_in);
		*had_expires = true;
	} else if ((slot = json_slot(r, buf_str(&key))) != NULL) {
		if (*slot == NULL)
			rc = json_text(j, slot);
	} else {
		rc = json_skip(j, 1);
	}
done:
	oauth2_buf_wipe(&key);
	return rc;
}

/* json_members - the members of the reply object, after its '{' */
static int json_members(struct json *j, struct oauth2_reply *r)
{
	bool had_expires = false;

	if (json_ws(j) == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (json_member(j, r, &had_expires) < 0)
			return -1;
		if (json_eat(j, ',') < 0)
			return json_eat(j, '}');
	}
}

/* oauth2_reply_free - wipe and free the members; all NULL after */
void oauth2_reply_free(struct oauth2_reply *r)
{
	oauth2_wipe(r->access_token);
	oauth2_wipe(r->refresh_token);
	free(r->token_type);
	free(r->error);
	free(r->error_description);
	memset(r, 0, sizeof(*r));
	r->expires_in = OAUTH2_EXPIRES_DEFAULT;
}

/* oauth2_parse_reply - the token endpoint's JSON object into out */
int oauth2_parse_reply(const char *json, size_t len,
		       struct oauth2_reply *out)
{
	struct json j = { json, json + len };

	memset(out, 0, sizeof(*out));
	out->expires_in = OAUTH2_EXPIRES_DEFAULT;
	if (len > OAUTH2_REPLY_MAX || json_eat(&j, '{') < 0 ||
	    json_members(&j, out) < 0 || json_ws(&j) != -1) {
		oauth2_reply_free(out);
		return -1;
	}
	return 0;
}

/*
 * The cache
 */

/* oauth2_cache_free - wipe the tokens; the cache is empty after */
void oauth2_cache_free(struct oauth2_cache *c)
{
	oauth2_wipe(c->refresh_token);
	oauth2_wipe(c->access_token);
	memset(c, 0, sizeof(*c));
}

/* oauth2_set - replace a token slot with a copy of v, wiping the old */
static void oauth2_set(char **slot, const char *v)
{
	oauth2_wipe(*slot);
	*slot = v ? xstrdup(v) : NULL;
}

/* oauth2_cache_line - one "key value" line into c; unknown keys are
 * ignored, a bad value makes the cache malformed */
static int oauth2_cache_line(struct oauth2_cache *c, const char *key,
			     const char *v)
{
	char *end;

	if (strcmp(key, "origin") == 0) {
		if (strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64)
			return -1;
		memcpy(c->origin, v, 65);
	} else if (strcmp(key, "refresh_token") == 0 ||
		   strcmp(key, "access_token") == 0) {
		if (!oauth2_is_token(v))
			return -1;
		oauth2_set(key[0] == 'r' ? &c->refresh_token :
			   &c->access_token, v);
	} else if (strcmp(key, "expires") == 0) {
		errno = 0;
		c->expires = strtoll(v, &end, 10);
		if (errno || end == v || *end || c->expires < 0)
			return -1;
	} else if (strcmp(key, "state") == 0) {
		if (strcmp(v, "ok") != 0 && strcmp(v, "invalid_grant") != 0)
			return -1;
		c->invalid_grant = v[0] == 'i';
	}
	return 0;
}

/* oauth2_cache_parse - the cache file's text (changed in place) into c */
int oauth2_cache_parse(struct oauth2_cache *c, char *text)
{
	char *line = text, *nl, *sp;

	while (*line) {
		if ((nl = strchr(line, '\n')) == NULL)
			return -1;	/* a cut-off last line */
		*nl = '\0';
		if ((sp = strchr(line, ' ')) == NULL)
			return -1;
		*sp = '\0';
		if (oauth2_cache_line(c, line, sp + 1) < 0)
			return -1;
		line = nl + 1;
	}
	return c->origin[0] ? 0 : -1;
}

/* oauth2_slurp - a regular file's whole content, at most b->max bytes */
static int oauth2_slurp(int fd, struct buf *b)
{
	char chunk[4096];
	struct stat st;
	ssize_t n;
	int rc = 0;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	while (rc == 0 && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(b, chunk, (size_t)n) < 0)
			rc = -1;
	}
	explicit_bzero(chunk, sizeof(chunk));
	return rc;
}

/* oauth2_cache_read - the cache file name into c; a missing, unreadable
 * or malformed cache reads as empty */
static void oauth2_cache_read(int dirfd, const char *name,
			      struct oauth2_cache *c)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct buf b = BUF_INIT(OAUTH2_CACHE_MAX);

	memset(c, 0, sizeof(*c));
	if (fd < 0) {
		if (errno != ENOENT)
			log_verbose("oauth2: cannot read the token cache %s: "
				    "%s", name, strerror(errno));
		return;
	}
	if (oauth2_slurp(fd, &b) < 0 || b.len == 0 ||
	    strlen(b.data) != b.len || oauth2_cache_parse(c, b.data) < 0) {
		log_verbose("oauth2: ignoring the malformed token cache %s",
			    name);
		oauth2_cache_free(c);
	}
	close(fd);
	oauth2_buf_wipe(&b);
}

/* oauth2_cache_text - the cache file's lines */
int oauth2_cache_text(const struct oauth2_cache *c, struct buf *b)
{
	int rc = buf_printf(b, "origin %s\n", c->origin);

	if (c->refresh_token)
		rc |= buf_printf(b, "refresh_token %s\n", c->refresh_token);
	if (c->access_token)
		rc |= buf_printf(b, "access_token %s\n", c->access_token);
	rc |= buf_printf(b, "expires %lld\nstate %s\n", c->expires,
			 c->invalid_grant ? "invalid_grant" : "ok");
	return rc;
}

/* oauth2_write_all - write n bytes or fail */
static int oauth2_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* oauth2_cache_write - replace the cache name atomically through tmp:
 * write, fsync, rename, fsync the directory. The caller holds the lock,
 * so a tmp that exists was left by a crash */
static int oauth2_cache_write(int dirfd, const char *name, const char *tmp,
			      const struct oauth2_cache *c)
{
	struct buf b = BUF_INIT(OAUTH2_CACHE_MAX);
	int fd = -1, saved;

	if (oauth2_cache_text(c, &b) < 0) {
		errno = EFBIG;
		goto fail;
	}
	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 ||
	    oauth2_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0)
		goto fail;
	saved = close(fd);
	fd = -1;
	if (saved < 0 || renameat(dirfd, tmp, dirfd, name) < 0 ||
	    fsync(dirfd) < 0)
		goto fail;
	oauth2_buf_wipe(&b);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	oauth2_buf_wipe(&b);
	errno = saved;
	return -1;
}

/*
 * The refresh
 */

/* everything one oauth2_token() call holds */
struct oauth2_run {
	const struct conf_relay *rc;
	int dirfd;
	int lockfd;		/* flocked; -1 until then */
	char name[256];		/* oauth2-NAME: the cache */
	char lock[256];		/* oauth2-NAME.lock */
	char tmp[256];		/* oauth2-NAME.tmp */
	char origin[65];	/* hex SHA-256 of the file's token */
	char *file_token;	/* oauth2_refresh_token_file's token */
	struct oauth2_cache cache;
};

/* oauth2_names - the cache, lock and temporary file names: "oauth2-" and
 * the relay name, ':' and anything unfit for a file name as '-' */
static int oauth2_names(struct oauth2_run *run, char *err, size_t errlen)
{
	const char *relay = run->rc->name;
	char safe[OAUTH2_NAME_MAX + 1];
	size_t n = strlen(relay);

	if (n > OAUTH2_NAME_MAX) {
		snprintf(err, errlen, "oauth2: the name of [%.40s...] is too "
			 "long for a token cache file", relay);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		safe[i] = (char)(strchr(OAUTH2_NAME_CHARS, relay[i]) ?
				 relay[i] : '-');
	safe[n] = '\0';
	snprintf(run->name, sizeof(run->name), "oauth2-%s", safe);
	snprintf(run->lock, sizeof(run->lock), "oauth2-%s.lock", safe);
	snprintf(run->tmp, sizeof(run->tmp), "oauth2-%s.tmp", safe);
	return 0;
}

/* oauth2_trim - s without the blanks around it, in a new string */
static char *oauth2_trim(const char *s)
{
	size_t n;

	s += strspn(s, " \t");
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	return xstrndup(s, n);
}

/* oauth2_file_token - the first line of oauth2_refresh_token_file */
static char *oauth2_file_token(const struct conf_relay *rc, char *err,
			       size_t errlen)
{
	const char *path = rc->oauth2_refresh_token_file;
	FILE *fp = conf_open_secret("oauth2_refresh_token_file", path, err,
				    errlen);
	struct buf b = BUF_INIT(OAUTH2_TOKEN_MAX);
	char *token;
	int ch;

	if (fp == NULL)
		return NULL;
	while ((ch = getc(fp)) != EOF && ch != '\n')
		if (buf_putc(&b, (char)ch) < 0)
			break;
	fclose(fp);
	token = oauth2_trim(buf_str(&b));
	if (strlen(buf_str(&b)) != b.len)
		token[0] = '\0';	/* a NUL byte: not a token */
	oauth2_buf_wipe(&b);
	if (!oauth2_is_token(token)) {
		snprintf(err, errlen, "oauth2_refresh_token_file %s: the first "
			 "line is not a refresh token (printable ASCII without"
			 " spaces)", path);
		oauth2_wipe(token);
		return NULL;
	}
	return token;
}

/* oauth2_origin - hex SHA-256 of a refresh token */
static int oauth2_origin(const char *token, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	if (EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) != 1
	    || n != 32)
		return -1;
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* oauth2_lock - open the lock file and flock it exclusively */
static int oauth2_lock(struct oauth2_run *run, char *err, size_t errlen)
{
	run->lockfd = openat(run->dirfd, run->lock, O_RDWR | O_CREAT |
			     O_NOFOLLOW | O_CLOEXEC, 0600);
	if (run->lockfd < 0)
		goto fail;
	while (flock(run->lockfd, LOCK_EX) < 0)
		if (errno != EINTR)
			goto fail;
	return 0;
fail:
	snprintf(err, errlen, "oauth2: cannot lock the token cache %s: %s",
		 run->lock, strerror(errno));
	if (run->lockfd >= 0)
		close(run->lockfd);
	run->lockfd = -1;
	return -1;
}

/* oauth2_begin - the file's token, the lock, and the cache, which is
 * started afresh from the file's token unless it grew from it */
static int oauth2_begin(struct oauth2_run *run, char *err, size_t errlen)
{
	struct oauth2_cache *c = &run->cache;

	if (oauth2_names(run, err, errlen) < 0 ||
	    (run->file_token = oauth2_file_token(run->rc, err, errlen)) ==
	    NULL)
		return -1;
	if (oauth2_origin(run->file_token, run->origin) < 0) {
		snprintf(err, errlen, "oauth2: cannot compute SHA-256");
		return -1;
	}
	if (oauth2_lock(run, err, errlen) < 0)
		return -1;
	oauth2_cache_read(run->dirfd, run->name, c);
	if (strcmp(c->origin, run->origin) != 0) {
		if (c->origin[0])
			log_verbose("oauth2: %s holds a new refresh token; "
				    "starting afresh",
				    run->rc->oauth2_refresh_token_file);
		oauth2_cache_free(c);
		memcpy(c->origin, run->origin, sizeof(c->origin));
	}
	if (c->refresh_token == NULL)
		oauth2_set(&c->refresh_token, run->file_token);
	return 0;
}

/* oauth2_end - unlock and forget */
static void oauth2_end(struct oauth2_run *run)
{
	if (run->lockfd >= 0)
		close(run->lockfd);	/* releases the flock */
	oauth2_wipe(run->file_token);
	oauth2_cache_free(&run->cache);
}

/* oauth2_form_add - "&name=value" with value URL-escaped */
static int oauth2_form_add(const struct curl_api *api, CURL *h,
			   struct buf *form, const char *name,
			   const char *value)
{
	char *e = api->easy_escape(h, value, 0);
	int rc;

	if (e == NULL)
		return -1;
	rc = buf_printf(form, "%s%s=%s", form->len ? "&" : "", name, e);
	explicit_bzero(e, strlen(e));
	api->free(e);
	return rc;
}

/* oauth2_form - the refresh grant of RFC 6749 section 6 */
static int oauth2_form(const struct curl_api *api, CURL *h,
		       const struct oauth2_run *run, struct buf *form)
{
	const struct conf_relay *rc = run->rc;
	int bad = 0;

	bad |= oauth2_form_add(api, h, form, "grant_type", "refresh_token");
	bad |= oauth2_form_add(api, h, form, "refresh_token",
			       run->cache.refresh_token);
	bad |= oauth2_form_add(api, h, form, "client_id",
			       rc->oauth2_client_id);
	if (rc->oauth2_client_secret)
		bad |= oauth2_form_add(api, h, form, "client_secret",
				       rc->oauth2_client_secret);
	if (rc->oauth2_scope)
		bad |= oauth2_form_add(api, h, form, "scope",
				       rc->oauth2_scope);
	return bad ? -1 : 0;
}

/* oauth2_collect - libcurl's write callback: keep at most the buffer's
 * maximum; more ends the transfer with CURLE_WRITE_ERROR */
static size_t oauth2_collect(char *p, size_t size, size_t n, void *arg)
{
	return buf_append(arg, p, size * n) < 0 ? 0 : size * n;
}

/* one HTTPS exchange with the token endpoint */
struct oauth2_http {
	const struct curl_api *api;
	CURL *curl;
	const struct conf_relay *rc;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
};

/* oauth2_setopts - a hardened POST: https only, no redirect, no proxy
 * but the configured one, TLS 1.2 or later with verification */
static void oauth2_setopts(struct oauth2_http *x, const struct buf *form,
			   struct buf *reply)
{
	const struct conf_relay *rc = x->rc;
	const struct curl_api *api = x->api;
	CURL *h = x->curl;

	api->easy_setopt(h, CURLOPT_URL, rc->oauth2_token_url);
	api->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	api->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	api->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	api->easy_setopt(h, CURLOPT_PROXY, rc->proxy ? rc->proxy : "");
	api->easy_setopt(h, CURLOPT_SSLVERSION,
			 (long)CURL_SSLVERSION_TLSv1_2);
	api->easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	api->easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (rc->oauth2_ca_file) {
		api->easy_setopt(h, CURLOPT_CAINFO, rc->oauth2_ca_file);
		api->easy_setopt(h, CURLOPT_CAPATH, (char *)NULL);
	}
	api->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, rc->connect_timeout);
	api->easy_setopt(h, CURLOPT_TIMEOUT, rc->timeout);
	api->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	api->easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	api->easy_setopt(h, CURLOPT_USERAGENT, "outbox");
	api->easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	api->easy_setopt(h, CURLOPT_POST, 1L);
	api->easy_setopt(h, CURLOPT_POSTFIELDS, form->data);
	api->easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)form->len);
	api->easy_setopt(h, CURLOPT_WRITEFUNCTION, oauth2_collect);
	api->easy_setopt(h, CURLOPT_WRITEDATA, reply);
}

/* oauth2_perform - the POST over HTTPS: the reply and its HTTP status */
static int oauth2_perform(struct oauth2_http *x, const struct buf *form,
			  struct buf *reply, long *status, char *err,
			  size_t errlen)
{
	const char *url = x->rc->oauth2_token_url;
	CURLcode rc;

	x->headers = x->api->slist_append(NULL, "Accept: application/json");
	x->headers = x->api->slist_append(x->headers, "Content-Type: "
					  "application/x-www-form-urlencoded");
	x->errbuf[0] = '\0';
	oauth2_setopts(x, form, reply);
	rc = x->api->easy_perform(x->curl);
	x->api->slist_free_all(x->headers);
	x->headers = NULL;
	if (rc == CURLE_WRITE_ERROR) {
		snprintf(err, errlen, "oauth2 token endpoint %s: the reply is "
			 "larger than %d KiB", url, OAUTH2_REPLY_MAX / 1024);
		return -1;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "oauth2 token endpoint %s: %s", url,
			 x->errbuf[0] ? x->errbuf : x->api->easy_strerror(rc));
		return -1;
	}
	x->api->easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

/* oauth2_exchange - POST the refresh grant; the reply and its status */
static int oauth2_exchange(const struct oauth2_run *run, struct buf *reply,
			   long *status, char *err, size_t errlen)
{
	struct oauth2_http x = { .rc = run->rc };
	struct buf form = BUF_INIT(OAUTH2_FORM_MAX);
	int rc = -1;

	if ((x.api = curl_api(err, errlen)) == NULL)
		return -1;
	if ((x.curl = x.api->easy_init()) == NULL) {
		snprintf(err, errlen, "oauth2: cannot initialise libcurl");
		return -1;
	}
	if (oauth2_form(x.api, x.curl, run, &form) < 0)
		snprintf(err, errlen, "oauth2: cannot build the token request "
			 "for [%s]", run->rc->name);
	else if (oauth2_post_hook)
		rc = oauth2_post_hook(run->rc->oauth2_token_url, form.data,
				      reply, status, err, errlen);
	else
		rc = oauth2_perform(&x, &form, reply, status, err, errlen);
	x.api->easy_cleanup(x.curl);
	oauth2_buf_wipe(&form);
	return rc;
}

/* oauth2_printable - s for a one-line message: printable ASCII, at most
 * len - 1 bytes, anything else as '?' */
static void oauth2_printable(const char *s, char *out, size_t len)
{
	size_t n = 0;

	for (; s && *s && n + 1 < len; s++)
		out[n++] = (char)(*s >= ' ' && *s <= '~' ? *s : '?');
	out[n] = '\0';
}

/* outcomes of a refresh */
enum oauth2_outcome {
	OAUTH2_GRANTED,		/* a new access token */
	OAUTH2_REFUSED,		/* invalid_grant: authorise again */
	OAUTH2_FAILED,		/* temporary: try again later */
};

/* oauth2_error - the endpoint's error member, in err */
static void oauth2_error(const char *url, long status,
			 const struct oauth2_reply *r, char *err,
			 size_t errlen)
{
	char code[64], text[256];

	oauth2_printable(r->error, code, sizeof(code));
	oauth2_printable(r->error_description, text, sizeof(text));
	snprintf(err, errlen, "oauth2 token endpoint %s: HTTP %ld: %s%s%s",
		 url, status, code, text[0] ? ": " : "", text);
}

/* oauth2_judge - what the endpoint's reply means; when granted, r holds
 * tokens fit for use */
static enum oauth2_outcome oauth2_judge(const char *url, long status,
					const struct buf *reply,
					struct oauth2_reply *r, char *err,
					size_t errlen)
{
	const char *bad = NULL;

	if (oauth2_parse_reply(buf_str(reply), reply->len, r) < 0) {
		snprintf(err, errlen, "oauth2 token endpoint %s: HTTP %ld%s",
			 url, status, status == 200 ? ": malformed reply" :
			 "");
		return OAUTH2_FAILED;
	}
	if (r->error && strcmp(r->error, "invalid_grant") == 0 &&
	    (status == 400 || status == 401))
		return OAUTH2_REFUSED;
	if (r->error) {
		oauth2_error(url, status, r, err, errlen);
		return OAUTH2_FAILED;
	}
	if (status != 200)
		bad = "";
	else if (r->access_token == NULL)
		bad = ": no access_token in the reply";
	else if (r->token_type && strcasecmp(r->token_type, "Bearer") != 0)
		bad = ": the token_type is not Bearer";
	else if (!oauth2_is_token(r->access_token) || (r->refresh_token &&
		 !oauth2_is_token(r->refresh_token)))
		bad = ": a token is not printable ASCII without spaces";
	if (bad == NULL)
		return OAUTH2_GRANTED;
	snprintf(err, errlen, "oauth2 token endpoint %s: HTTP %ld%s", url,
		 status, bad);
	return OAUTH2_FAILED;
}

/* oauth2_refused - the message for a refused refresh token */
static void oauth2_refused(const struct conf_relay *rc, char *err,
			   size_t errlen)
{
	snprintf(err, errlen, "oauth2: the refresh token for [%s] was refused"
		 " (invalid_grant); authorise again and put the new refresh "
		 "token in %s", rc->name, rc->oauth2_refresh_token_file);
}

/* oauth2_save - write the cache; a failure is worth a warning, as a
 * rotated refresh token may be lost with it */
static void oauth2_save(struct oauth2_run *run)
{
	if (oauth2_cache_write(run->dirfd, run->name, run->tmp,
			       &run->cache) < 0)
		log_warn("oauth2: cannot save the token cache %s for [%s]: "
			 "%s", run->name, run->rc->name, strerror(errno));
}

/* oauth2_refresh - ask the endpoint; keep what it says in the cache */
static char *oauth2_refresh(struct oauth2_run *run, bool *reauth,
			    char *err, size_t errlen)
{
	struct oauth2_cache *c = &run->cache;
	struct buf reply = BUF_INIT(OAUTH2_REPLY_MAX);
	struct oauth2_reply r = { 0 };
	char *token = NULL;
	long status = 0;

	log_verbose("oauth2: refreshing the access token for [%s] at %s",
		    run->rc->name, run->rc->oauth2_token_url);
	if (oauth2_exchange(run, &reply, &status, err, errlen) < 0)
		goto done;
	switch (oauth2_judge(run->rc->oauth2_token_url, status, &reply, &r,
			     err, errlen)) {
	case OAUTH2_GRANTED:
		oauth2_set(&c->access_token, r.access_token);
		if (r.refresh_token)
			oauth2_set(&c->refresh_token, r.refresh_token);
		c->expires = (long long)sys_now() + r.expires_in;
		c->invalid_grant = false;
		oauth2_save(run);
		token = xstrdup(c->access_token);
		break;
	case OAUTH2_REFUSED:
		oauth2_set(&c->access_token, NULL);
		c->expires = 0;
		c->invalid_grant = true;
		oauth2_save(run);
		oauth2_refused(run->rc, err, errlen);
		*reauth = true;
		break;
	case OAUTH2_FAILED:
		break;
	}
done:
	oauth2_reply_free(&r);
	oauth2_buf_wipe(&reply);
	return token;
}

/* oauth2_decide - the cached token, a refusal, or a refresh */
static char *oauth2_decide(struct oauth2_run *run, bool force, bool *reauth,
			   char *err, size_t errlen)
{
	const struct oauth2_cache *c = &run->cache;

	if (c->invalid_grant) {
		oauth2_refused(run->rc, err, errlen);
		*reauth = true;
		return NULL;
	}
	if (!force && c->access_token &&
	    c->expires - (long long)sys_now() > OAUTH2_MARGIN)
		return xstrdup(c->access_token);
	return oauth2_refresh(run, reauth, err, errlen);
}

/* oauth2_token - an access token for rc; see oauth2.h */
char *oauth2_token(const struct conf_relay *rc, int dirfd, bool force,
		   bool *reauth, char *err, size_t errlen)
{
	struct oauth2_run run = { .rc = rc, .dirfd = dirfd, .lockfd = -1 };
	char *token = NULL;

	*reauth = false;
	if (oauth2_begin(&run, err, errlen) == 0)
		token = oauth2_decide(&run, force, reauth, err, errlen);
	oauth2_end(&run);
	return token;
}
