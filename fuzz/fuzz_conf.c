/*
 * NAME
 *	fuzz_conf - the configuration file parser (conf/conf.c, libinih)
 * FEEDS
 *	The input is an outbox.conf: it is put in a memfd (mode 0600, so a
 *	password in it is allowed) and conf_load() reads it by path, as
 *	sendmail -C FILE does. A file outbox refuses ends in log_die(),
 *	which jumps back here (fuzz/common.h); what the abandoned load had
 *	allocated is then freed, so that only a real leak is reported.
 * ASSERTS
 *	- conf_load() either returns a configuration or refuses the file
 *	  with "file:line: reason" (the path first); never a crash, never
 *	  another exit;
 *	- an accepted configuration keeps outbox's rules: every relay has a
 *	  host, a port from 1 to 65535 and a TLS mode; tls = none only for a
 *	  loopback host and never with credentials; AUTH only with a user and
 *	  a secret (or EXTERNAL with a client certificate); one password
 *	  source at most; retry_min <= retry_max; each DKIM key has a domain,
 *	  a selector and a key file; alias names are lower case and unique;
 *	  [mail] from and bounce_to pass the envelope check;
 *	- looking things up in it (relay for a sender, aliases, the domain)
 *	  works, and conf_free() releases all of it (LeakSanitizer).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "fuzz/common.h"
#include "message/addr.h"
#include "util/log.h"
#include "util/sys.h"

static int conf_fd;
static char conf_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(false);
	sys_fqdn();
	sys_home();
	sys_login();
	fuzz_catch_install();
	conf_fd = fuzz_memfd("", 0);
	if (fchmod(conf_fd, 0600) < 0)
		abort();
	snprintf(conf_path, sizeof(conf_path), "/proc/self/fd/%d", conf_fd);
	return 0;
}

/* check_relay - one accepted relay */
static void check_relay(const struct conf_relay *r)
{
	int sources = !!r->password + !!r->password_file +
	    !!r->password_command + !!r->password_env;

	FUZZ_ASSERT(r->name && r->host);
	FUZZ_ASSERT(r->port >= 1 && r->port <= 65535);
	FUZZ_ASSERT(r->tls == CONF_TLS_STARTTLS ||
		    r->tls == CONF_TLS_IMPLICIT || r->tls == CONF_TLS_NONE);
	FUZZ_ASSERT(r->tls_min == 12 || r->tls_min == 13);
	FUZZ_ASSERT(sources <= 1);
	if (r->tls == CONF_TLS_NONE) {
		FUZZ_ASSERT(conf_host_is_loopback(r->host));
		FUZZ_ASSERT(r->auth == 0 && sources == 0);
	}
	if (r->auth & AUTH_EXTERNAL)
		FUZZ_ASSERT(r->client_cert != NULL);
	if (r->auth & ~AUTH_EXTERNAL)
		FUZZ_ASSERT(r->user != NULL && (sources == 1 ||
						r->oauth2_token_url));
	if (r->client_key)
		FUZZ_ASSERT(r->client_cert != NULL);
	FUZZ_ASSERT(r->connections >= 1 && r->connections <= CONF_COUNT_MAX);
	FUZZ_ASSERT(r->connect_timeout > 0 && r->timeout > 0 &&
		    r->data_timeout > 0);
	for (unsigned bit = 1; bit <= AUTH_EXTERNAL; bit <<= 1)
		if (r->auth & bit)
			FUZZ_ASSERT(strcmp(conf_auth_name(bit), "?") != 0);
	(void)conf_relay_serves(r, "alice@example.com");
	(void)conf_relay_serves(r, "");
}

/* check_conf - an accepted configuration */
static void check_conf(const struct conf *c)
{
	FUZZ_ASSERT(c->path && strcmp(c->path, conf_path) == 0);
	for (size_t i = 0; i < c->nrelays; i++)
		check_relay(&c->relays[i]);
	FUZZ_ASSERT(c->queue.retry_min <= c->queue.retry_max);
	FUZZ_ASSERT(c->queue.max_age > 0 && c->mail.max_size >= 0);
	FUZZ_ASSERT(c->mail.rewrite_from == REWRITE_LOCAL ||
		    c->mail.rewrite_from == REWRITE_NEVER ||
		    c->mail.rewrite_from == REWRITE_ALWAYS);
	if (c->mail.from)
		FUZZ_ASSERT(addr_check_envelope(c->mail.from) == NULL);
	if (c->mail.bounce_to)
		FUZZ_ASSERT(addr_check_envelope(c->mail.bounce_to) == NULL);
	if (c->mail.domain)
		FUZZ_ASSERT(addr_check_domain(c->mail.domain) == 0);
	FUZZ_ASSERT(conf_domain(c) != NULL);
	for (size_t i = 0; i < c->ndkim; i++) {
		const struct conf_dkim *k = &c->dkim[i];

		FUZZ_ASSERT(k->domain && k->selector && k->key_file &&
			    k->key_file[0] == '/');
	}
	for (size_t i = 0; i < c->naliases; i++) {
		const struct conf_alias *a = &c->aliases[i];

		FUZZ_ASSERT(a->addrs && *a->addrs);
		for (const char *s = a->name; *s; s++)
			FUZZ_ASSERT(!isupper((unsigned char)*s));
		FUZZ_ASSERT(conf_alias(c, a->name) == a->addrs);
	}
	(void)conf_relay_for(c, "alice@example.com");
	(void)conf_relay_for(c, "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct conf *volatile c = NULL;

	fuzz_memfd_reset(conf_fd, data, size);
	fuzz_track_begin();
	fuzz_die_armed = true;
	if (setjmp(fuzz_die_env) == 0)
		c = conf_load(conf_path);
	fuzz_die_armed = false;
	if (c == NULL) {
		/* refused: "PATH:LINE: reason" or "PATH: reason" */
		FUZZ_ASSERT(strncmp(fuzz_die_text, conf_path,
				    strlen(conf_path)) == 0);
		FUZZ_ASSERT(fuzz_die_text[strlen(conf_path)] == ':');
		fuzz_track_end(true);
		return 0;
	}
	check_conf(c);
	conf_free(c);
	FUZZ_ASSERT(fuzz_track_end(false) == 0);
	return 0;
}
