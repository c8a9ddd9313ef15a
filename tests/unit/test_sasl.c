/*
 * NAME
 *	test_sasl - SMTP AUTH's client side: the choice of mechanism and
 *	the bytes each one sends
 */
#include <string.h>

#include "conf/conf.h"
#include "relay/sasl.h"
#include "tests/unit/t.h"

static const struct sasl_cred alice = { "alice", "s3cret", "relay.example",
	587 };

/* the EHLO reply of a relay that offers these mechanisms */
#define OFFERS(m)	"250-relay.example\n250-PIPELINING\n250-AUTH " m \
	"\n250 8BITMIME\n"

/* the allowed mechanism the relay offers, in outbox's preference order */
static void sasl_pick_prefers_in_order(void)
{
	const char *all = OFFERS("LOGIN PLAIN CRAM-MD5 XOAUTH2 OAUTHBEARER");

	T_INTEQ(sasl_pick(AUTH_PLAIN | AUTH_LOGIN, all, 1), AUTH_PLAIN);
	T_INTEQ(sasl_pick(AUTH_LOGIN, all, 1), AUTH_LOGIN);
	T_INTEQ(sasl_pick(AUTH_PLAIN | AUTH_CRAM_MD5, all, 1), AUTH_CRAM_MD5);
	T_INTEQ(sasl_pick(AUTH_BEARER, all, 1), AUTH_OAUTHBEARER);
	T_INTEQ(sasl_pick(AUTH_XOAUTH2, all, 1), AUTH_XOAUTH2);
	T_INTEQ(sasl_pick(AUTH_PLAIN | AUTH_LOGIN, OFFERS("LOGIN"), 1),
		AUTH_LOGIN);
}

/* nothing allowed on offer, no secret, or no AUTH line: no mechanism */
static void sasl_pick_refuses_what_does_not_fit(void)
{
	T_INTEQ(sasl_pick(AUTH_PLAIN, OFFERS("CRAM-MD5 LOGIN"), 1), 0);
	T_INTEQ(sasl_pick(AUTH_PLAIN, OFFERS("PLAIN"), 0), 0);
	T_INTEQ(sasl_pick(AUTH_PLAIN, "250-relay\n250 PIPELINING\n", 1), 0);
	T_INTEQ(sasl_pick(AUTH_PLAIN, "250-relay\n250 AUTHX PLAIN\n", 1), 0);
	/* a mechanism named in another keyword's line is not offered */
	T_INTEQ(sasl_pick(AUTH_PLAIN, "250-relay\n250 X-PLAIN PLAIN\n", 1), 0);
	T_INTEQ(sasl_pick(AUTH_EXTERNAL, OFFERS("PLAIN"), 0), 0);
	T_INTEQ(sasl_pick(AUTH_EXTERNAL, OFFERS("PLAIN EXTERNAL"), 0),
		AUTH_EXTERNAL);
}

/* "AUTH=" (old Outlook form), lower case, CRLF endings, last line */
static void sasl_offered_forms(void)
{
	T_CHECK(sasl_offered("250-r\n250-AUTH=LOGIN PLAIN\n250 OK\n", "PLAIN"));
	T_CHECK(sasl_offered("250-r\n250-auth plain\n250 OK\n", "PLAIN"));
	T_CHECK(sasl_offered("250-r\r\n250 AUTH LOGIN PLAIN\r\n", "PLAIN"));
	T_CHECK(sasl_offered("250-r\n250 AUTH LOGIN PLAIN", "PLAIN"));
	T_CHECK(!sasl_offered("250-r\n250 AUTH LOGIN PLAINX\n", "PLAIN"));
	T_CHECK(!sasl_offered("", "PLAIN"));
}

/* the AUTH line of each mechanism, initial response included */
static void sasl_start_lines(void)
{
	struct buf b = BUF_INIT(4096);
	const struct sasl_cred tok = { "alice", "tok", "relay.example", 587 };
	const struct sasl_cred ext = { NULL, NULL, "relay.example", 25 };

	T_INTEQ(sasl_start(&alice, AUTH_PLAIN, &b), 0);
	T_STREQ(buf_str(&b), "AUTH PLAIN AGFsaWNlAHMzY3JldA==");
	buf_reset(&b);
	T_INTEQ(sasl_start(&alice, AUTH_LOGIN, &b), 0);
	T_STREQ(buf_str(&b), "AUTH LOGIN");
	buf_reset(&b);
	T_INTEQ(sasl_start(&alice, AUTH_CRAM_MD5, &b), 0);
	T_STREQ(buf_str(&b), "AUTH CRAM-MD5");
	buf_reset(&b);
	T_INTEQ(sasl_start(&tok, AUTH_XOAUTH2, &b), 0);
	T_STREQ(buf_str(&b), "AUTH XOAUTH2 "
		"dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2sBAQ==");
	buf_reset(&b);
	T_INTEQ(sasl_start(&tok, AUTH_OAUTHBEARER, &b), 0);
	T_STREQ(buf_str(&b), "AUTH OAUTHBEARER bixhPWFsaWNlLAFob3N0PXJlbGF5Lm"
		"V4YW1wbGUBcG9ydD01ODcBYXV0aD1CZWFyZXIgdG9rAQE=");
	buf_reset(&b);
	T_INTEQ(sasl_start(&ext, AUTH_EXTERNAL, &b), 0);
	T_STREQ(buf_str(&b), "AUTH EXTERNAL =");
	buf_free(&b);
}

/* LOGIN's two answers, and nothing after them */
static void sasl_step_login(void)
{
	struct buf b = BUF_INIT(4096);

	T_INTEQ(sasl_step(&alice, AUTH_LOGIN, 0, "VXNlcm5hbWU6", &b), 0);
	T_STREQ(buf_str(&b), "YWxpY2U=");
	buf_reset(&b);
	T_INTEQ(sasl_step(&alice, AUTH_LOGIN, 1, "UGFzc3dvcmQ6", &b), 0);
	T_STREQ(buf_str(&b), "czNjcmV0");
	buf_reset(&b);
	T_INTEQ(sasl_step(&alice, AUTH_LOGIN, 2, "", &b), -1);
	buf_free(&b);
}

/* CRAM-MD5: RFC 2195's own example; a challenge that is not base64 */
static void sasl_step_cram_md5(void)
{
	const struct sasl_cred tim = { "tim", "tanstaaftanstaaf", "h", 25 };
	struct buf b = BUF_INIT(4096);

	T_INTEQ(sasl_step(&tim, AUTH_CRAM_MD5, 0, "PDE4OTYuNjk3MTcwOTUyQHBvc3"
			  "RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+", &b), 0);
	T_STREQ(buf_str(&b), "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNG"
		"QzODkw");
	buf_reset(&b);
	T_INTEQ(sasl_step(&tim, AUTH_CRAM_MD5, 0, "not base64!", &b), -1);
	T_INTEQ(sasl_step(&tim, AUTH_CRAM_MD5, 1, "", &b), -1);
	buf_free(&b);
}

/* a refused bearer token: the reply that makes the relay say 535 */
static void sasl_step_bearer_refused(void)
{
	struct buf b = BUF_INIT(4096);

	T_INTEQ(sasl_step(&alice, AUTH_XOAUTH2, 0, "eyJzdGF0dXMiOiI0MDEifQ==",
			  &b), 0);
	T_STREQ(buf_str(&b), "");
	T_INTEQ(sasl_step(&alice, AUTH_OAUTHBEARER, 0, "e30=", &b), 0);
	T_STREQ(buf_str(&b), "AQ==");
	T_INTEQ(sasl_step(&alice, AUTH_PLAIN, 0, "", &b), -1);
	buf_free(&b);
}

/* a secret too long for one AUTH line fails instead of being cut */
static void sasl_start_too_long(void)
{
	static char big[20000];
	struct sasl_cred c = { "alice", big, "h", 25 };
	struct buf b = BUF_INIT(64 * 1024);

	memset(big, 'x', sizeof(big) - 1);
	T_INTEQ(sasl_start(&c, AUTH_PLAIN, &b), -1);
	buf_free(&b);
}

const struct t_test t_sasl_tests[] = {
	T_ENTRY(sasl_pick_prefers_in_order),
	T_ENTRY(sasl_pick_refuses_what_does_not_fit),
	T_ENTRY(sasl_offered_forms),
	T_ENTRY(sasl_start_lines),
	T_ENTRY(sasl_step_login),
	T_ENTRY(sasl_step_cram_md5),
	T_ENTRY(sasl_step_bearer_refused),
	T_ENTRY(sasl_start_too_long),
	T_END
};
