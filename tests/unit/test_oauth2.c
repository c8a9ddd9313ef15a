/*
 * NAME
 *	test_oauth2 - relay/oauth2.c: the token endpoint's JSON, the token
 *	cache, refresh, rotation and invalid_grant
 * DESCRIPTION
 *	The parser tests feed oauth2_parse_reply() replies, good and bad.
 *
 *	The cache tests build a struct conf_relay in memory whose token
 *	endpoint is https://127.0.0.1:1/token, where nothing listens: a test
 *	that must make no request uses the real HTTPS path, so a request
 *	would fail it. Tests that need answers put fake_post() in place of
 *	HTTPS with oauth2_set_post(); it records the URL and form body it
 *	was given and replies with the status and text the test chose.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "relay/oauth2.h"
#include "tests/unit/t.h"

#define URL	"https://127.0.0.1:1/token"

/* the fake token endpoint */
static struct {
	unsigned calls;
	long status;		/* what it answers */
	const char *reply;
	char url[256];		/* what it was given last */
	char body[4096];
	const char *count_file;	/* also appends a line here per call */
	useconds_t delay;	/* before answering */
} fake;

/* fake_post - oauth2_post_fn: record the request, answer as told */
static int fake_post(const char *url, const char *body, struct buf *reply,
		     long *status, char *err, size_t errlen)
{
	fake.calls++;
	snprintf(fake.url, sizeof(fake.url), "%s", url);
	snprintf(fake.body, sizeof(fake.body), "%s", body);
	if (fake.delay)
		usleep(fake.delay);
	if (fake.count_file) {
		int fd = open(fake.count_file, O_WRONLY | O_APPEND | O_CREAT |
			      O_CLOEXEC, 0600);

		if (fd >= 0) {
			if (write(fd, "x\n", 2) != 2)
				fake.calls += 1000;
			close(fd);
		}
	}
	if (fake.reply == NULL) {
		snprintf(err, errlen, "fake: connection refused");
		return -1;
	}
	*status = fake.status;
	return buf_puts(reply, fake.reply);
}

/* fake_answer - install the fake with this answer */
static void fake_answer(long status, const char *reply)
{
	fake.status = status;
	fake.reply = reply;
	oauth2_set_post(fake_post);
}

/* parse - oauth2_parse_reply of a C string */
static int parse(const char *json, struct oauth2_reply *r)
{
	return oauth2_parse_reply(json, strlen(json), r);
}

/* a Google-style reply: the members outbox keeps, others ignored */
static void oauth2_parse_typical(void)
{
	struct oauth2_reply r;

	T_INTEQ(parse("{\"access_token\": \"ya29.a0Af-_~+/=\", "
		      "\"expires_in\": 3599, \"scope\": "
		      "\"https://mail.google.com/\", \"token_type\": "
		      "\"Bearer\"}", &r), 0);
	T_STREQ(r.access_token, "ya29.a0Af-_~+/=");
	T_INTEQ(r.expires_in, 3599);
	T_STREQ(r.token_type, "Bearer");
	T_CHECK(r.refresh_token == NULL);
	T_CHECK(r.error == NULL);
	T_CHECK(r.error_description == NULL);
	oauth2_reply_free(&r);
}

/* an error reply: error and error_description */
static void oauth2_parse_error(void)
{
	struct oauth2_reply r;

	T_INTEQ(parse("{\"error\":\"invalid_grant\",\"error_description\":"
		      "\"Token has been expired or revoked.\"}", &r), 0);
	T_STREQ(r.error, "invalid_grant");
	T_STREQ(r.error_description, "Token has been expired or revoked.");
	T_CHECK(r.access_token == NULL);
	oauth2_reply_free(&r);
}

/* "{}" and whitespace around it: nothing set, expires_in 3600 */
static void oauth2_parse_missing_fields(void)
{
	static const char *c[] = { "{}", " \t\r\n{ \n } \n", "{\"x\":1}" };

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct oauth2_reply r;

		T_CTX("reply %s", c[i]);
		if (!T_INTEQ(parse(c[i], &r), 0))
			continue;
		T_CHECK(r.access_token == NULL && r.refresh_token == NULL &&
			r.token_type == NULL && r.error == NULL &&
			r.error_description == NULL);
		T_INTEQ(r.expires_in, 3600);
		oauth2_reply_free(&r);
	}
}

/* every two-character escape */
static void oauth2_parse_escapes(void)
{
	struct oauth2_reply r;

	T_INTEQ(parse("{\"error_description\":\"q\\\"b\\\\s\\/b\\bf\\fn\\n"
		      "r\\rt\\t.\"}", &r), 0);
	T_STREQ(r.error_description, "q\"b\\s/b\bf\fn\nr\rt\t.");
	oauth2_reply_free(&r);
}

/* \uXXXX in both cases, surrogate pairs, raw UTF-8: all UTF-8 out */
static void oauth2_parse_unicode(void)
{
	static const struct {
		const char *in, *out;
	} c[] = {
		{ "\\u0041", "A" },
		{ "\\u00e9\\u00C9", "\xc3\xa9\xc3\x89" },
		{ "\\u07ff", "\xdf\xbf" },
		{ "\\u20ac", "\xe2\x82\xac" },
		{ "\\uffff", "\xef\xbf\xbf" },
		{ "\\ud83d\\ude00", "\xf0\x9f\x98\x80" },
		{ "\\uD800\\uDC00", "\xf0\x90\x80\x80" },
		{ "\\udbff\\udfff", "\xf4\x8f\xbf\xbf" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char json[128];
		struct oauth2_reply r;

		T_CTX("string \"%s\"", c[i].in);
		snprintf(json, sizeof(json), "{\"error\":\"%s\"}", c[i].in);
		if (T_INTEQ(parse(json, &r), 0))
			T_STREQ(r.error, c[i].out);
		oauth2_reply_free(&r);
	}
}

/* nested arrays and objects, true, false, null are skipped */
static void oauth2_parse_nested_skipped(void)
{
	struct oauth2_reply r;

	T_INTEQ(parse("{\"a\":{\"b\":[1,-2.5e3,{\"c\":\"d\\u00e9\"}],\"e\":[]"
		      ",\"f\":{}},\"access_token\":\"tok\",\"g\":[[[[]]]],"
		      "\"h\":true,\"i\":false,\"j\":null,\"k\":[true,null]}",
		      &r), 0);
	T_STREQ(r.access_token, "tok");
	oauth2_reply_free(&r);
}

/* null for a kept member leaves it unset */
static void oauth2_parse_null_member(void)
{
	struct oauth2_reply r;

	T_INTEQ(parse("{\"refresh_token\":null,\"expires_in\":null,"
		      "\"access_token\":\"t\"}", &r), 0);
	T_CHECK(r.refresh_token == NULL);
	T_INTEQ(r.expires_in, 3600);
	oauth2_reply_free(&r);
}

/* expires_in: JSON numbers and quoted digits, clamped to [0, 86400] */
static void oauth2_parse_expires_in(void)
{
	static const struct {
		const char *v;
		long want;
	} c[] = {
		{ "3600", 3600 }, { "0", 0 }, { "1", 1 }, { "\"3599\"", 3599 },
		{ "3.6e3", 3600 }, { "36E2", 3600 }, { "3600.9", 3600 },
		{ "1e+2", 100 }, { "5e-1", 0 }, { "-5", 0 }, { "-0", 0 },
		{ "86400", 86400 }, { "86401", 86400 }, { "1e999", 86400 },
		{ "99999999999999999999999", 86400 },
		{ "\"99999999999999999999\"", 86400 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char json[128];
		struct oauth2_reply r;

		T_CTX("expires_in %s", c[i].v);
		snprintf(json, sizeof(json), "{\"expires_in\":%s}", c[i].v);
		if (T_INTEQ(parse(json, &r), 0))
			T_INTEQ(r.expires_in, c[i].want);
		oauth2_reply_free(&r);
	}
}

/* only len bytes are read */
static void oauth2_parse_respects_len(void)
{
	struct oauth2_reply r;

	T_INTEQ(oauth2_parse_reply("{}garbage", 2, &r), 0);
	oauth2_reply_free(&r);
	T_INTEQ(oauth2_parse_reply("{\"error\":\"x\"}", 12, &r), -1);
	T_INTEQ(oauth2_parse_reply("{}\0", 3, &r), -1);
}

/* malformed JSON, and members of the wrong type, are refused with
 * every member NULL */
static void oauth2_parse_malformed(void)
{
	static const char *c[] = {
		"", " ", "{", "}", "[]", "\"x\"", "null", "1", "{\"a\"}",
		"{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "{,}",
		"{\"a\":1 \"b\":2}",
		"{a:1}", "{'a':1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
		"{\"a\":+1}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":-}",
		"{\"a\":0x10}", "{\"a\":NaN}", "{\"a\":Infinity}",
		"{\"a\":tru}",
		"{\"a\":True}", "{\"a\":nul}", "{\"a\":[1,]}", "{\"a\":[1 2]}",
		"{\"a\":{\"b\"}}", "{\"a\":{1:2}}", "{\"a\":[}", "{\"a\":[]]}",
		"{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12g4\"}",
		"{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}",
		"{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\ud800x\"}",
		"{\"a\":\"\\u0000\"}", "{\"a\":\"\\", "{\"a\":\"x",
		"{\"a\":\"x}",
		"{\"a\":\"\x01\"}", "{\"a\":\"\t\"}", "{\"a\":\"\n\"}",
		"{\"a\":\"\xc3\"}", "{\"a\":\"\xc3(\"}", "{\"a\":\"\xc0\xaf\"}",
		"{\"a\":\"\xe0\x80\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xff\"}",
		"{\"a\":\"\x80\"}", "{} x", "{}{}", "\xef\xbb\xbf{}",
		"{\"access_token\":5}", "{\"access_token\":true}",
		"{\"access_token\":[\"x\"]}", "{\"error\":{}}",
		"{\"access_token\":\"a\",\"access_token\":\"b\"}",
		"{\"expires_in\":1,\"expires_in\":2}", "{\"expires_in\":\"\"}",
		"{\"expires_in\":\"12a\"}", "{\"expires_in\":\"-1\"}",
		"{\"expires_in\":\"1.5\"}", "{\"expires_in\":true}",
		"{\"expires_in\":[1]}",
		"{\"access_token\":\"t\",\"expires_in\":3600,}",
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct oauth2_reply r;

		T_CTX("reply %s", c[i]);
		T_INTEQ(parse(c[i], &r), -1);
		T_CHECK(r.access_token == NULL && r.refresh_token == NULL &&
			r.token_type == NULL && r.error == NULL &&
			r.error_description == NULL);
	}
}

/* nesting up to 31 levels inside the reply is skipped, deeper refused */
static void oauth2_parse_depth_limit(void)
{
	char json[256];
	struct oauth2_reply r;
	size_t n = 0;

	for (int depth = 30; depth <= 32; depth++) {
		n = 0;
		n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"a\":");
		for (int i = 0; i < depth; i++)
			json[n++] = '[';
		for (int i = 0; i < depth; i++)
			json[n++] = ']';
		snprintf(json + n, sizeof(json) - n, "}");
		T_CTX("depth %d", depth);
		T_INTEQ(parse(json, &r), depth <= 31 ? 0 : -1);
		oauth2_reply_free(&r);
	}
}

/*
 * The cache
 */

/* a relay with OAuth2 in a fresh directory */
struct fix {
	struct conf_relay rc;
	char *dir;		/* the spool */
	int dirfd;
	char *token_file;	/* oauth2_refresh_token_file */
	char *cache;		/* dir/oauth2-relay-work */
	char err[512];
	bool reauth;
};

/* fix_open - relay "relay:work" with refresh token "rt-file" */
static bool fix_open(struct fix *f)
{
	memset(f, 0, sizeof(*f));
	f->dir = t_tmpdir();
	f->token_file = t_path(f->dir, "refresh");
	f->cache = t_path(f->dir, "oauth2-relay-work");
	f->rc.name = "relay:work";
	f->rc.oauth2_token_url = URL;
	f->rc.oauth2_client_id = "cid";
	f->rc.oauth2_client_secret = "csecret";
	f->rc.oauth2_refresh_token_file = f->token_file;
	f->rc.connect_timeout = 5;
	f->rc.timeout = 5;
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return T_CHECK(f->dirfd >= 0) &&
	    T_INTEQ(t_write_file(f->token_file, "rt-file\n", 0600), 0);
}

/* fix_close - release f */
static void fix_close(struct fix *f)
{
	close(f->dirfd);
	free(f->dir);
	free(f->token_file);
	free(f->cache);
}

/* fix_token - oauth2_token for f's relay */
static char *fix_token(struct fix *f, bool force)
{
	f->err[0] = '\0';
	f->reauth = false;
	return oauth2_token(&f->rc, f->dirfd, force, &f->reauth, f->err,
			    sizeof(f->err));
}

/* sha256_hex - the cache's origin for a refresh token */
static void sha256_hex(const char *s, char hex[65])
{
	unsigned char md[32];
	unsigned n = 0;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* write_cache - a cache file grown from refresh token origin */
static bool write_cache(struct fix *f, const char *origin, const char *rt,
			const char *at, long long expires, const char *state)
{
	char hex[65], text[1024];

	sha256_hex(origin, hex);
	snprintf(text, sizeof(text), "origin %s\nrefresh_token %s\n"
		 "access_token %s\nexpires %lld\nstate %s\n", hex, rt, at,
		 expires, state);
	return T_INTEQ(t_write_file(f->cache, text, 0600), 0);
}

/* cache_has - the cache file holds this line */
static bool cache_has(struct fix *f, const char *line)
{
	char *text = t_read_file(f->cache);
	char want[512];
	bool ok;

	snprintf(want, sizeof(want), "%s\n", line);
	ok = T_CONTAINS(text, want);
	free(text);
	return ok;
}

/* a fresh cached token is returned without a request */
static void oauth2_cache_fresh_token_used(void)
{
	struct fix f;
	char *tok;

	if (!fix_open(&f))
		return;
	write_cache(&f, "rt-file", "rt-file", "at-cached",
		    (long long)time(NULL) + 3600, "ok");
	tok = fix_token(&f, false);
	T_STREQ(tok, "at-cached");
	T_STREQ(f.err, "");
	T_CHECK(!f.reauth);
	free(tok);
	fix_close(&f);
}

/* a cache grown from another refresh token is discarded: the request
 * (to a port where nothing listens) is made, and fails temporarily,
 * leaving the cache as it was */
static void oauth2_cache_origin_mismatch_discarded(void)
{
	struct fix f;
	char *before, *after, *tok;

	if (!fix_open(&f))
		return;
	write_cache(&f, "rt-old", "rt-old", "at-cached",
		    (long long)time(NULL) + 3600, "ok");
	before = t_read_file(f.cache);
	tok = fix_token(&f, false);
	T_CHECK(tok == NULL);
	T_CONTAINS(f.err, "oauth2 token endpoint " URL ": ");
	T_CHECK(!f.reauth);
	after = t_read_file(f.cache);
	T_STREQ(after, before);
	free(before);
	free(after);
	fix_close(&f);
}

/* a cache in state invalid_grant: reauth, no request (a request would
 * have failed with a connection error instead) */
static void oauth2_cache_invalid_grant_no_request(void)
{
	struct fix f;
	char *tok;

	if (!fix_open(&f))
		return;
	write_cache(&f, "rt-file", "rt-file", "at-old", 0, "invalid_grant");
	tok = fix_token(&f, false);
	T_CHECK(tok == NULL);
	T_CHECK(f.reauth);
	T_CONTAINS(f.err, "oauth2: the refresh token for [relay:work] was "
		   "refused (invalid_grant); authorise again and put the new "
		   "refresh token in ");
	T_CONTAINS(f.err, f.token_file);
	tok = fix_token(&f, true);
	T_CHECK(tok == NULL && f.reauth);
	fix_close(&f);
}

/* a token that expires within 60 s is refreshed; the new one cached */
static void oauth2_cache_expiring_token_refreshed(void)
{
	struct fix f;
	char *tok;

	if (!fix_open(&f))
		return;
	write_cache(&f, "rt-file", "rt-file", "at-old",
		    (long long)time(NULL) + 59, "ok");
	fake_answer(200, "{\"access_token\":\"at-new\",\"expires_in\":3600,"
		    "\"token_type\":\"bearer\"}");
	tok = fix_token(&f, false);
	T_STREQ(tok, "at-new");
	T_INTEQ(fake.calls, 1);
	cache_has(&f, "access_token at-new");
	free(tok);
	fix_close(&f);
}

/* force gets a new token even when the cached one is fresh */
static void oauth2_cache_force_refreshes(void)
{
	struct fix f;
	char *tok;

	if (!fix_open(&f))
		return;
	write_cache(&f, "rt-file", "rt-file", "at-old",
		    (long long)time(NULL) + 3600, "ok");
	fake_answer(200, "{\"access_token\":\"at-new\"}");
	tok = fix_token(&f, true);
	T_STREQ(tok, "at-new");
	T_INTEQ(fake.calls, 1);
	free(tok);
	fix_close(&f);
}

/* first use: the form, the cache file (0600, every line), the lock
 * file, no temporary left; the next call makes no request */
static void oauth2_cache_first_use_written(void)
{
	struct fix f;
	struct stat st;
	char hex[65], line[128], *tok, *lock, *tmp;
	long long expires;
	char *text, *p;

	if (!fix_open(&f))
		return;
	fake_answer(200, "{\"access_token\":\"at-1\",\"expires_in\":3600}");
	tok = fix_token(&f, false);
	T_STREQ(tok, "at-1");
	free(tok);
	T_STREQ(fake.url, URL);
	T_STREQ(fake.body, "grant_type=refresh_token&refresh_token=rt-file&"
		"client_id=cid&client_secret=csecret");
	if (T_INTEQ(lstat(f.cache, &st), 0)) {
		T_CHECK(S_ISREG(st.st_mode));
		T_INTEQ(st.st_mode & 07777, 0600);
	}
	sha256_hex("rt-file", hex);
	snprintf(line, sizeof(line), "origin %s", hex);
	cache_has(&f, line);
	cache_has(&f, "refresh_token rt-file");
	cache_has(&f, "access_token at-1");
	cache_has(&f, "state ok");
	text = t_read_file(f.cache);
	p = text ? strstr(text, "expires ") : NULL;
	if (T_CHECK(p != NULL)) {
		expires = strtoll(p + 8, NULL, 10);
		T_CHECK(expires >= (long long)time(NULL) + 3590 &&
			expires <= (long long)time(NULL) + 3600);
	}
	free(text);
	lock = t_path(f.dir, "oauth2-relay-work.lock");
	tmp = t_path(f.dir, "oauth2-relay-work.tmp");
	if (T_INTEQ(lstat(lock, &st), 0))
		T_INTEQ(st.st_mode & 07777, 0600);
	T_CHECK(!t_exists(tmp));
	tok = fix_token(&f, false);
	T_STREQ(tok, "at-1");
	T_INTEQ(fake.calls, 1);
	free(tok);
	free(lock);
	free(tmp);
	fix_close(&f);
}

/* a public client sends no client_secret; scope and tokens are escaped */
static void oauth2_request_form_escaped(void)
{
	struct fix f;
	char *tok;

	if (!fix_open(&f))
		return;
	f.rc.oauth2_client_secret = NULL;
	f.rc.oauth2_scope = "https://outlook.office.com/SMTP.Send "
	    "offline_access";
	f.rc.oauth2_client_id = "id&x=1";
	T_INTEQ(t_write_file(f.token_file, "  1//a+b/c=d%e&f \r\nmore\n",
			     0600), 0);
	fake_answer(200, "{\"access_token\":\"at\"}");
	tok = fix_token(&f, false);
	T_STREQ(tok, "at");
	T_STREQ(fake.body, "grant_type=refresh_token&refresh_token="
		"1%2F%2Fa%2Bb%2Fc%3Dd%25e%26f&client_id=id%26x%3D1&scope="
		"https%3A%2F%2Foutlook.office.com%2FSMTP.Send%20"
		"offline_access");
	free(tok);
	fix_close(&f);
}

/* a rotated refresh token is stored and used for the next refresh */
static void oauth2_rotation_stored(void)
{
	struct fix f;
	char *tok;

	if (!fix_open(&f))
		return;
	fake_answer(200, "{\"access_token\":\"at-1\",\"refresh_token\":"
		    "\"rt-2\"}");
	tok = fix_token(&f, false);
	T_STREQ(tok, "at-1");
	free(tok);
	cache_has(&f, "refresh_token rt-2");
	fake_answer(200, "{\"access_token\":\"at-2\"}");
	tok = fix_token(&f, true);
	T_STREQ(tok, "at-2");
	free(tok);
	T_CONTAINS(fake.body, "&refresh_token=rt-2&");
	cache_has(&f, "refresh_token rt-2");
	cache_has(&f, "access_token at-2");
	fix_close(&f);
}

/* invalid_grant: reauth, the state is kept and no request is made until
 * the refresh token file changes */
static void oauth2_invalid_grant_until_file_changes(void)
{
	struct fix f;
	char *tok;

	if (!fix_open(&f))
		return;
	fake_answer(400, "{\"error\":\"invalid_grant\",\"error_description\":"
		    "\"Token has been expired or revoked.\"}");
	tok = fix_token(&f, false);
	T_CHECK(tok == NULL);
	T_CHECK(f.reauth);
	T_CONTAINS(f.err, "(invalid_grant); authorise again");
	cache_has(&f, "state invalid_grant");
	tok = fix_token(&f, true);
	T_CHECK(tok == NULL && f.reauth);
	T_INTEQ(fake.calls, 1);
	T_INTEQ(t_write_file(f.token_file, "rt-new\n", 0600), 0);
	fake_answer(200, "{\"access_token\":\"at-new\"}");
	tok = fix_token(&f, false);
	T_STREQ(tok, "at-new");
	T_CHECK(!f.reauth);
	T_INTEQ(fake.calls, 2);
	T_CONTAINS(fake.body, "&refresh_token=rt-new&");
	cache_has(&f, "state ok");
	free(tok);
	fix_close(&f);
}

/* temporary failures: the message, no reauth, the cache untouched, no
 * secret in the message */
static void oauth2_temporary_failures(void)
{
	static const struct {
		long status;
		const char *reply;	/* NULL: the transfer fails */
		const char *err;
	} c[] = {
		{ 503, "<html>busy</html>", "endpoint " URL ": HTTP 503" },
		{ 500, "", "endpoint " URL ": HTTP 500" },
		{ 401, "{\"error\":\"invalid_client\",\"error_description\":"
		  "\"Unauthorized\\n\\u00e9\"}",
		  "endpoint " URL ": HTTP 401: invalid_client: "
		  "Unauthorized???" },
		{ 400, "{\"error\":\"invalid_request\"}",
		  "endpoint " URL ": HTTP 400: invalid_request" },
		{ 200, "{\"error\":\"invalid_grant\"}",
		  "HTTP 200: invalid_grant" },
		{ 302, "{\"access_token\":\"at\"}", URL ": HTTP 302" },
		{ 200, "{\"access_token\":\"at\"",
		  "HTTP 200: malformed reply" },
		{ 200, "{\"token_type\":\"Bearer\"}", "no access_token" },
		{ 200, "{\"access_token\":\"at\",\"token_type\":\"mac\"}",
		  "the token_type is not Bearer" },
		{ 200, "{\"access_token\":\"a t\"}", "not printable ASCII" },
		{ 200, "{\"access_token\":\"\"}", "not printable ASCII" },
		{ 200, "{\"access_token\":\"a\\u00e9\"}", "not printable" },
		{ 200, "{\"access_token\":\"at\",\"refresh_token\":\"r\\nx\"}",
		  "not printable ASCII" },
		{ 0, NULL, "fake: connection refused" },
	};
	struct fix f;

	if (!fix_open(&f))
		return;
	write_cache(&f, "rt-file", "rt-file", "at-old", 0, "ok");
	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char *before = t_read_file(f.cache), *after, *tok;

		T_CTX("HTTP %ld %s", c[i].status, c[i].reply);
		fake_answer(c[i].status, c[i].reply);
		tok = fix_token(&f, false);
		T_CHECK(tok == NULL);
		T_CHECK(!f.reauth);
		T_CONTAINS(f.err, c[i].err);
		T_CHECK(strstr(f.err, "csecret") == NULL &&
			strstr(f.err, "rt-file") == NULL);
		after = t_read_file(f.cache);
		T_STREQ(after, before);
		free(before);
		free(after);
		free(tok);
	}
	fix_close(&f);
}

/* the real HTTPS path to a closed port: a temporary error naming the
 * endpoint, nothing cached */
static void oauth2_https_unreachable(void)
{
	struct fix f;
	char *tok;

	if (!fix_open(&f))
		return;
	tok = fix_token(&f, false);
	T_CHECK(tok == NULL);
	T_CHECK(!f.reauth);
	T_CONTAINS(f.err, "oauth2 token endpoint " URL ": ");
	T_CHECK(!t_exists(f.cache));
	fix_close(&f);
}

/* the cache file name: "oauth2-" and the relay name, ':' as '-' */
static void oauth2_cache_file_names(void)
{
	static const struct {
		const char *relay, *file;
	} c[] = {
		{ "relay", "oauth2-relay" },
		{ "relay:work", "oauth2-relay-work" },
		{ "relay:a/../b c", "oauth2-relay-a-..-b-c" },
	};
	struct fix f;

	if (!fix_open(&f))
		return;
	fake_answer(200, "{\"access_token\":\"at\"}");
	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char *path = t_path(f.dir, c[i].file), *tok;

		T_CTX("relay %s", c[i].relay);
		f.rc.name = (char *)c[i].relay;
		tok = fix_token(&f, false);
		T_STREQ(tok, "at");
		T_CHECK(t_exists(path));
		free(tok);
		free(path);
	}
	fix_close(&f);
}

/* a malformed cache is ignored: a request is made, the cache rewritten */
static void oauth2_cache_malformed_ignored(void)
{
	static const struct {
		bool origin;		/* starts with the right origin line */
		const char *rest;
	} c[] = {
		{ false, "" }, { false, "garbage\n" }, { false, "origin 12\n" },
		{ false, "state ok\n" },
		{ true, "refresh_token rt-file\naccess_token at-old\n"
		  "expires 99999999999\nstate maybe\n" },
		{ true, "refresh_token rt-file\naccess_token at-old\n"
		  "expires soon\nstate ok\n" },
		{ true, "refresh_token rt-file\naccess_token at-old\n"
		  "expires 99999999999\nstate ok" },
		{ true, "refresh_token rt file\naccess_token at-old\n"
		  "expires 99999999999\nstate ok\n" },
		{ true, "refresh_token rt-file\naccess_token at-old\n"
		  "expires 99999999999\nstate ok\nnoblank\n" },
	};
	struct fix f;
	char hex[65], text[1024];

	if (!fix_open(&f))
		return;
	sha256_hex("rt-file", hex);
	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char *tok;

		T_CTX("cache %s", c[i].rest);
		snprintf(text, sizeof(text), "%s%s%s%s", c[i].origin ?
			 "origin " : "", c[i].origin ? hex : "",
			 c[i].origin ? "\n" : "", c[i].rest);
		T_INTEQ(t_write_file(f.cache, text, 0600), 0);
		fake_answer(200, "{\"access_token\":\"at-new\"}");
		tok = fix_token(&f, false);
		T_STREQ(tok, "at-new");
		cache_has(&f, "access_token at-new");
		free(tok);
	}
	fix_close(&f);
}

/* the refresh token file: readable by everyone, empty, or not a token */
static void oauth2_token_file_refused(void)
{
	static const struct {
		const char *text;
		mode_t mode;
		const char *err;
	} c[] = {
		{ "rt-file\n", 0644, "is readable by everyone" },
		{ "", 0600, "the first line is not a refresh token" },
		{ "\nrt-file\n", 0600,
		  "the first line is not a refresh token" },
		{ "rt file\n", 0600, "the first line is not a refresh token" },
		{ "rt\x01x\n", 0600, "the first line is not a refresh token" },
	};
	struct fix f;

	if (!fix_open(&f))
		return;
	fake_answer(200, "{\"access_token\":\"at\"}");
	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char *tok;

		T_CTX("file \"%s\" mode %o", c[i].text, (unsigned)c[i].mode);
		T_INTEQ(t_write_file(f.token_file, c[i].text, c[i].mode), 0);
		tok = fix_token(&f, false);
		T_CHECK(tok == NULL);
		T_CONTAINS(f.err, c[i].err);
		T_CONTAINS(f.err, f.token_file);
	}
	T_INTEQ(fake.calls, 0);
	free(f.token_file);
	f.token_file = t_path(f.dir, "absent");
	f.rc.oauth2_refresh_token_file = f.token_file;
	T_CHECK(fix_token(&f, false) == NULL);
	T_CONTAINS(f.err, "No such file");
	fix_close(&f);
}

/* racer - one of several processes asking for a token at once */
static _Noreturn void racer(struct fix *f)
{
	char *tok = fix_token(f, false);
	int ok = tok && strcmp(tok, "at-race") == 0;

	free(tok);
	_exit(ok ? 0 : 1);
}

/* processes that want a token together: one refreshes, the others wait
 * on the lock and then read its result */
static void oauth2_concurrent_one_refresh(void)
{
	struct fix f;
	char *count, *text;
	pid_t pids[4];
	int status;

	if (!fix_open(&f))
		return;
	count = t_path(f.dir, "requests");
	fake.count_file = count;
	fake.delay = 200000;
	fake_answer(200, "{\"access_token\":\"at-race\"}");
	fflush(NULL);
	for (size_t i = 0; i < 4; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			racer(&f);
	}
	for (size_t i = 0; i < 4; i++)
		if (T_CHECK(pids[i] > 0 && waitpid(pids[i], &status, 0) > 0))
			T_INTEQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1,
				0);
	text = t_read_file(count);
	T_STREQ(text, "x\n");
	free(text);
	free(count);
	fix_close(&f);
}

const struct t_test t_oauth2_tests[] = {
	T_ENTRY(oauth2_parse_typical),
	T_ENTRY(oauth2_parse_error),
	T_ENTRY(oauth2_parse_missing_fields),
	T_ENTRY(oauth2_parse_escapes),
	T_ENTRY(oauth2_parse_unicode),
	T_ENTRY(oauth2_parse_nested_skipped),
	T_ENTRY(oauth2_parse_null_member),
	T_ENTRY(oauth2_parse_expires_in),
	T_ENTRY(oauth2_parse_respects_len),
	T_ENTRY(oauth2_parse_malformed),
	T_ENTRY(oauth2_parse_depth_limit),
	T_ENTRY(oauth2_cache_fresh_token_used),
	T_ENTRY(oauth2_cache_origin_mismatch_discarded),
	T_ENTRY(oauth2_cache_invalid_grant_no_request),
	T_ENTRY(oauth2_cache_expiring_token_refreshed),
	T_ENTRY(oauth2_cache_force_refreshes),
	T_ENTRY(oauth2_cache_first_use_written),
	T_ENTRY(oauth2_request_form_escaped),
	T_ENTRY(oauth2_rotation_stored),
	T_ENTRY(oauth2_invalid_grant_until_file_changes),
	T_ENTRY(oauth2_temporary_failures),
	T_ENTRY(oauth2_https_unreachable),
	T_ENTRY(oauth2_cache_file_names),
	T_ENTRY(oauth2_cache_malformed_ignored),
	T_ENTRY(oauth2_token_file_refused),
	T_ENTRY(oauth2_concurrent_one_refresh),
	T_END
};
