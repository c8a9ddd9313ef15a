/*
 * NAME
 *	fuzz_addr - address lists and the envelope check (message/addr.c)
 * FEEDS
 *	The input is an address list as it comes in a To/Cc/Bcc header or
 *	on sendmail's command line ("Name <a@b>, c@d (x), group: e@f;").
 *	It goes through addr_parse_list(), then every address found through
 *	addr_check_envelope(), addr_qualify(), addr_check_domain() and
 *	addr_local(); the whole list also goes through
 *	submit_recipient_list() (aliases, the catch-all, qualification,
 *	de-duplication) with and without a "*" alias.
 * ASSERTS
 *	- every address found is a non-empty C string;
 *	- addr_check_envelope() accepts exactly what may go on the wire in
 *	  MAIL FROM / RCPT TO: 1 to 320 bytes, no control character, space,
 *	  '<' or '>', not starting or ending with '@' (an independent check);
 *	- addr_qualify() adds "@domain" to a bare name and changes nothing
 *	  else;
 *	- every recipient submit_recipient_list() keeps passes the envelope
 *	  check, none twice (ignoring case), one DSN entry per recipient;
 *	  when it fails, it says why.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "fuzz/common.h"
#include "message/addr.h"
#include "message/submit.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strlist.h"
#include "util/sys.h"

static struct conf_alias fuzz_aliases[] = {
	{ "root", "ops@example.com" },
	{ "postmaster", "root" },
	{ "team", "Alice <alice@example.org>, bob, root" },
	{ "bob", "bob, bob@example.net" },
	{ "a", "b" },
	{ "b", "a" },
	{ "*", "catchall@example.com" },
};

static struct conf fuzz_conf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(false);
	sys_fqdn();		/* cached for the process */
	sys_login();
	fuzz_conf.mail.domain = "example.com";
	fuzz_conf.aliases = fuzz_aliases;
	return 0;
}

/* wire_ok - the envelope rule, written independently */
static bool wire_ok(const char *a)
{
	size_t n = strlen(a);

	if (n == 0 || n > ADDR_MAX || a[0] == '@' || a[n - 1] == '@')
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	return true;
}

/* check_one - the checks on one address found in the list */
static void check_one(const char *a)
{
	const char *why = addr_check_envelope(a);
	char *q = addr_qualify(a, "example.com");
	char *same = addr_qualify(a, NULL);
	size_t n = strlen(a);

	FUZZ_ASSERT(n > 0);
	FUZZ_ASSERT((why == NULL) == wire_ok(a));
	FUZZ_ASSERT(strcmp(same, a) == 0);
	if (strchr(a, '@')) {
		FUZZ_ASSERT(strcmp(q, a) == 0);
	} else {
		FUZZ_ASSERT(strncmp(q, a, n) == 0);
		FUZZ_ASSERT(strcmp(q + n, "@example.com") == 0);
	}
	(void)addr_check_domain(a);
	(void)addr_local(a);
	free(q);
	free(same);
}

/* check_recipients - the list through aliases into an envelope */
static void check_recipients(const char *list, size_t naliases)
{
	struct submission sub;
	char err[256] = "";
	int rc;

	fuzz_conf.naliases = naliases;
	submission_init(&sub);
	rc = submit_recipient_list(&fuzz_conf, &sub, list, "NOTIFY=NEVER",
				   err, sizeof(err));
	FUZZ_ASSERT(rc == 0 || rc == -1);
	FUZZ_ASSERT(rc == 0 || err[0] != '\0');
	FUZZ_ASSERT(sub.rcpts.n == sub.rcpt_dsn.n);
	for (size_t i = 0; i < sub.rcpts.n; i++) {
		FUZZ_ASSERT(addr_check_envelope(sub.rcpts.v[i]) == NULL);
		FUZZ_ASSERT(strchr(sub.rcpts.v[i], '@') != NULL);
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERT(strcasecmp(sub.rcpts.v[i],
					       sub.rcpts.v[j]) != 0);
	}
	submission_free(&sub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strlist l = STRLIST_INIT;
	char *text = xstrndup((const char *)data, size);

	addr_parse_list((const char *)data, size, &l);
	for (size_t i = 0; i < l.n; i++)
		check_one(l.v[i]);
	strlist_free(&l);
	/* as a header value or argument: a C string */
	check_recipients(text, sizeof(fuzz_aliases) / sizeof(*fuzz_aliases)
			 - 1);
	check_recipients(text, sizeof(fuzz_aliases) / sizeof(*fuzz_aliases));
	free(text);
	return 0;
}
