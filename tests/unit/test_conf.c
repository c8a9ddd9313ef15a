/*
 * NAME
 *	test_conf - conf/conf.c: parsing, checks, lookup order, passwords
 * DESCRIPTION
 *	conf_load() ends the process with EX_CONFIG (78) on any error, so
 *	every load first runs in a forked child (t_fork) that reports its
 *	exit status and stderr; only a load known to succeed is repeated in
 *	the test process to look at the parsed fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "conf/conf.h"
#include "tests/unit/t.h"

struct outcome {
	char *path;		/* the config file written */
	int status;		/* conf_load's exit status in a child */
	char err[16384];	/* its stderr */
};

/* load_child - t_fork body: load the config at arg (NULL: lookup) */
static void load_child(void *arg)
{
	conf_free(conf_load(arg));	/* freed: valgrind sees no leak */
}

/* write_conf - text into a new file with this mode; malloc'd path */
static char *write_conf(const char *text, mode_t mode)
{
	char *dir = t_tmpdir();
	char *path = t_path(dir, "outbox.conf");

	free(dir);
	T_CHECK(t_write_file(path, text, mode) == 0);
	return path;
}

/* try_load - conf_load(path) in a child */
static void try_load(struct outcome *o, const char *path)
{
	o->status = t_fork(load_child, (void *)path, o->err, sizeof(o->err));
}

/* try_conf - write text (mode) and conf_load it in a child */
static void try_conf(struct outcome *o, const char *text, mode_t mode)
{
	o->path = write_conf(text, mode);
	try_load(o, o->path);
}

/* load_safely - conf_load(path) here, once a child showed it succeeds;
 * NULL (and a failure) if it does not */
static const struct conf *load_safely(const char *path)
{
	static struct outcome o;

	try_load(&o, path);
	if (!T_INTEQ(o.status, 0)) {
		printf("    stderr: %s", o.err);
		return NULL;
	}
	return conf_load(path);
}

/* load_text - write text with mode and load it; NULL on failure */
static const struct conf *load_text(const char *text, mode_t mode)
{
	char *path = write_conf(text, mode);
	const struct conf *c = load_safely(path);

	free(path);
	return c;
}

/* expect_error - text is refused with 78 and "PATH<suffix>" on stderr */
static void expect_error(const char *text, mode_t mode, const char *suffix)
{
	struct outcome o;
	char want[4096];

	try_conf(&o, text, mode);
	snprintf(want, sizeof(want), "%s%s", o.path, suffix);
	T_INTEQ(o.status, EX_CONFIG);
	T_CONTAINS(o.err, want);
	free(o.path);
}

/* a complete valid file: every key lands in its field */
static void conf_full_valid(void)
{
	const struct conf *c = load_text(
	    "# outbox configuration\n"
	    "[relay]\n"
	    "host = smtp.example.com\n"
	    "port = 2525\n"
	    "tls = tls\n"
	    "ca_file = /etc/ssl/certs/ca.pem\n"
	    "user = alice\n"
	    "password_file = /run/secrets/relay\n"
	    "helo = client.example.com\n"
	    "connect_timeout = 10\n"
	    "timeout = 2m\n"
	    "data_timeout = 1h\n"
	    "\n"
	    "[mail]\n"
	    "from = alice@example.com\n"
	    "domain = example.com\n"
	    "\n"
	    "[queue]\n"
	    "dir = /var/tmp/outbox-q\n"
	    "max_age = 3d\n"
	    "\n"
	    "[aliases]\n"
	    "root = alice@example.com, bob@example.com\n", 0600);

	if (c == NULL)
		return;
	T_CHECK(c->path != NULL);
	T_STREQ(c->relays[0].host, "smtp.example.com");
	T_INTEQ(c->relays[0].port, 2525);
	T_INTEQ(c->relays[0].tls, CONF_TLS_IMPLICIT);
	T_STREQ(c->relays[0].ca_file, "/etc/ssl/certs/ca.pem");
	T_STREQ(c->relays[0].user, "alice");
	T_STREQ(c->relays[0].password, NULL);
	T_STREQ(c->relays[0].password_file, "/run/secrets/relay");
	T_STREQ(c->relays[0].password_command, NULL);
	T_STREQ(c->relays[0].helo, "client.example.com");
	T_INTEQ(c->relays[0].connect_timeout, 10);
	T_INTEQ(c->relays[0].timeout, 120);
	T_INTEQ(c->relays[0].data_timeout, 3600);
	T_STREQ(c->mail.from, "alice@example.com");
	T_STREQ(c->mail.domain, "example.com");
	T_STREQ(conf_domain(c), "example.com");
	T_STREQ(c->queue.dir, "/var/tmp/outbox-q");
	T_INTEQ(c->queue.max_age, 3 * 86400);
	T_INTEQ(c->naliases, 1);
	T_STREQ(conf_alias(c, "root"), "alice@example.com, bob@example.com");
	conf_free(c);
}

/* an empty file gives the defaults: no relay, STARTTLS, 587, timeouts */
static void conf_empty_file_defaults(void)
{
	const struct conf *c = load_text("", 0644);

	if (c == NULL)
		return;
	T_INTEQ(c->nrelays, 0);
	T_INTEQ(c->queue.max_age, 5 * 86400);
	T_STREQ(c->queue.dir, NULL);
	T_INTEQ(c->naliases, 0);
	conf_free(c);
}

/* an unknown section is refused at its line, even with no keys in it */
static void conf_unknown_section(void)
{
	expect_error("[relay]\nhost = smtp.example.com\n[foo]\nx = 1\n", 0644,
		     ":3: unknown section [foo]");
	expect_error("[relay]\nhost = smtp.example.com\n\n[empty]\n", 0644,
		     ":4: unknown section [empty]");
}

/* an unknown key in a known section is refused at its line */
static void conf_unknown_key(void)
{
	expect_error("[relay]\nhots = smtp.example.com\n", 0644,
		     ":2: unknown key hots in [relay]");
	expect_error("[mail]\nhost = smtp.example.com\n", 0644,
		     ":2: unknown key host in [mail]");
}

/* line numbers count comment and blank lines */
static void conf_line_numbers_count_comments(void)
{
	expect_error("# comment\n\n[relay]\n; another\n\nhots = x\n", 0644,
		     ":6: unknown key hots in [relay]");
}

/* [mail] rewrite_from: never, local or always; local by default */
static void conf_rewrite_from(void)
{
	static const struct {
		const char *v;
		enum conf_rewrite want;
	} c[] = {
		{ NULL, REWRITE_LOCAL },
		{ "never", REWRITE_NEVER },
		{ "local", REWRITE_LOCAL },
		{ "always", REWRITE_ALWAYS },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char text[256];
		const struct conf *conf;

		T_CTX("rewrite_from = %s", c[i].v ? c[i].v : "(unset)");
		snprintf(text, sizeof(text), "[mail]\nfrom = a@example.com\n"
			 "%s%s\n", c[i].v ? "rewrite_from = " : "",
			 c[i].v ? c[i].v : "");
		if ((conf = load_text(text, 0644)) == NULL)
			continue;
		T_INTEQ(conf->mail.rewrite_from, c[i].want);
		conf_free(conf);
	}
	T_CTX("rewrite_from = sometimes");
	expect_error("[mail]\nfrom = a@example.com\nrewrite_from = sometimes\n",
		     0644, ":3: rewrite_from: expected never, local or always");
}

/* a key given twice is refused at the second one */
static void conf_key_twice(void)
{
	expect_error("[relay]\nport = 2525\ntimeout = 5\nport = 2526\n", 0644,
		     ":4: port given twice in [relay]");
	expect_error("[relay]\nport = 2525\n[mail]\n[relay]\nport = 2526\n",
		     0644, ":5: port given twice in [relay]");
}

/* a line that is neither [section] nor key = value is a syntax error */
static void conf_syntax_error(void)
{
	expect_error("[relay]\nthis is not a key\n", 0644,
		     ":2: syntax error");
}

/* ports outside 1..65535 or with a unit are refused */
static void conf_bad_port(void)
{
	static const char *bad[] = {
		"0", "70000", "65536", "abc", "5m", "25s", "-1", "", "+25",
		"0x19", "25 26", "99999999999999999999",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[256];

		T_CTX("port = %s", bad[i]);
		snprintf(text, sizeof(text), "[relay]\nport = %s\n", bad[i]);
		expect_error(text, 0644, ":2: port: not a port number");
	}
}

/* ports 1..65535 are taken as given */
static void conf_good_port(void)
{
	static const unsigned ok[] = { 1, 25, 2525, 65535 };

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		char text[256];
		const struct conf *c;

		T_CTX("port = %u", ok[i]);
		snprintf(text, sizeof(text),
			 "[relay]\nhost = h.example\nport = %u\n", ok[i]);
		if ((c = load_text(text, 0644)) == NULL)
			continue;
		T_INTEQ(c->relays[0].port, ok[i]);
		conf_free(c);
	}
}

/* tls takes exactly starttls, tls or none */
static void conf_tls_values(void)
{
	static const struct {
		const char *v;
		enum conf_tls want;
	} ok[] = {
		{ "starttls", CONF_TLS_STARTTLS },
		{ "tls", CONF_TLS_IMPLICIT },
		{ "none", CONF_TLS_NONE },
	};
	static const char *bad[] = { "ssl", "TLS", "yes", "", "starttls2" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		char text[256];
		const struct conf *c;

		T_CTX("tls = %s", ok[i].v);
		snprintf(text, sizeof(text),
			 "[relay]\nhost = localhost\ntls = %s\n", ok[i].v);
		if ((c = load_text(text, 0644)) == NULL)
			continue;
		T_INTEQ(c->relays[0].tls, ok[i].want);
		conf_free(c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[256];

		T_CTX("tls = %s", bad[i]);
		snprintf(text, sizeof(text), "[relay]\ntls = %s\n", bad[i]);
		expect_error(text, 0644, ":2: tls: expected starttls");
	}
}

/* durations: a number with an optional s/m/h/d/w unit */
static void conf_durations(void)
{
	static const struct {
		const char *v;
		long want;
	} c[] = {
		{ "30", 30 },
		{ "30s", 30 },
		{ "5m", 300 },
		{ "2h", 7200 },
		{ "5d", 5 * 86400 },
		{ "1w", 7 * 86400 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char text[256];
		const struct conf *conf;

		T_CTX("max_age = %s", c[i].v);
		snprintf(text, sizeof(text), "[queue]\nmax_age = %s\n", c[i].v);
		if ((conf = load_text(text, 0644)) == NULL)
			continue;
		T_INTEQ(conf->queue.max_age, c[i].want);
		conf_free(conf);
	}
}

/* bad durations: unknown unit, negative, zero, junk, absurdly long */
static void conf_bad_durations(void)
{
	static const char *bad[] = {
		"5x", "-1", "0", "", "m", "5mm", "1 m", "0x10", "99999999w",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[256];

		T_CTX("data_timeout = %s", bad[i]);
		snprintf(text, sizeof(text), "[relay]\ndata_timeout = %s\n",
			 bad[i]);
		expect_error(text, 0644, ":2: data_timeout: not a duration");
	}
}

/* repeat - a malloc'd string of n copies of c */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* a 5000-character line is refused as too long, at its line number */
static void conf_line_too_long(void)
{
	char *long_value = repeat('a', 5000);
	size_t n = strlen(long_value) + 100;
	char *text = malloc(n);

	snprintf(text, n, "[relay]\nhost = smtp.example.com\n"
		 "password_command = %s\nuser = u\n", long_value);
	expect_error(text, 0600, ":3: line too long");
	free(text);
	free(long_value);
}

/* line_of - "[relay]\nuser = u\npassword_command = aaa\n" whose third
 * line has exactly len bytes before its newline */
static char *line_of(size_t len)
{
	const char *key = "password_command = ";
	char *fill = repeat('a', len - strlen(key));
	size_t n = len + 64;
	char *text = malloc(n);

	snprintf(text, n, "[relay]\nuser = u\n%s%s\n", key, fill);
	free(fill);
	return text;
}

/* the limit that "line too long" announces is the one applied: a line
 * of that many bytes is accepted, one byte more is refused */
static void conf_line_limit_matches_message(void)
{
	struct outcome o;
	char *text = line_of(5000);
	const char *p;
	long limit;

	try_conf(&o, text, 0600);
	free(text);
	free(o.path);
	p = strstr(o.err, "the limit is ");
	if (!T_CHECK(p != NULL))
		return;
	limit = strtol(p + strlen("the limit is "), NULL, 10);
	T_CTX("announced limit %ld bytes", limit);

	text = line_of((size_t)limit);
	try_conf(&o, text, 0600);
	T_INTEQ(o.status, 0);
	free(text);
	free(o.path);
	text = line_of((size_t)limit + 1);
	try_conf(&o, text, 0600);
	T_INTEQ(o.status, EX_CONFIG);
	T_CONTAINS(o.err, ":3: line too long");
	free(text);
	free(o.path);
}

/* a world-readable file holding a password is refused with the chmod fix */
static void conf_password_world_readable(void)
{
	struct outcome o;

	expect_error("[relay]\nhost = smtp.example.com\nuser = u\n"
		     "password = s3cret\n", 0644, ": holds a password");
	expect_error("[relay]\nhost = smtp.example.com\nuser = u\n"
		     "password = s3cret\n", 0604, ": holds a password");
	try_conf(&o, "[relay]\nuser = u\npassword = s3cret\n", 0644);
	T_CONTAINS(o.err, "chmod o-rwx");
	T_CHECK(strstr(o.err, "s3cret") == NULL);
	free(o.path);
}

/* the same file readable by its group only (0640) or private is fine */
static void conf_password_group_readable_ok(void)
{
	static const mode_t modes[] = { 0640, 0600, 0400 };

	for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++) {
		const struct conf *c;

		T_CTX("mode %04o", (unsigned)modes[i]);
		c = load_text("[relay]\nhost = smtp.example.com\nuser = u\n"
			      "password = s3cret\n", modes[i]);
		if (c == NULL)
			continue;
		T_STREQ(c->relays[0].password, "s3cret");
		conf_free(c);
	}
}

/* a world-readable file without a password is fine */
static void conf_world_readable_without_password_ok(void)
{
	const struct conf *c = load_text("[relay]\nhost = smtp.example.com\n"
					 "user = u\npassword_file = /p\n",
					 0644);

	if (c != NULL)
		conf_free(c);
}

/* at most one password source */
static void conf_password_sources_exclusive(void)
{
	expect_error("[relay]\nuser = u\npassword = a\npassword_file = /p\n",
		     0600, ":1: [relay] password, password_file, "
		     "password_command and password_env exclude each other");
	expect_error("[relay]\nuser = u\npassword_file = /p\n"
		     "password_command = echo x\n", 0600,
		     ":1: [relay] password, password_file");
}

/* a user needs a password source, and a password needs a user */
static void conf_user_and_password_together(void)
{
	expect_error("[relay]\nhost = smtp.example.com\nuser = u\n", 0600,
		     ":1: [relay] user is set but no password");
	expect_error("[relay]\nhost = smtp.example.com\npassword = p\n", 0600,
		     ":1: [relay] a password is set but no user");
}

/* paths must be absolute */
static void conf_relative_path(void)
{
	expect_error("[relay]\nuser = u\npassword_file = secret.txt\n", 0600,
		     ":3: password_file: must be an absolute path");
	expect_error("[queue]\ndir = spool\n", 0600,
		     ":2: dir: must be an absolute path");
}

/* bad values of the host, address and domain types */
static void conf_bad_host_address_domain(void)
{
	expect_error("[relay]\nhost = smtp example.com\n", 0644,
		     ":2: host: not a host name or address");
	expect_error("[relay]\nhost = [not-v6]\n", 0644,
		     ":2: host: not a host name or address");
	expect_error("[mail]\nfrom = <a@b>\n", 0644, ":2: from: ");
	expect_error("[mail]\ndomain = -bad.example\n", 0644,
		     ":2: domain: not a domain name");
	expect_error("[relay]\nhelo = a_b\n", 0644,
		     ":2: helo: not a domain name");
}

/* IPv4 and (bracketed) IPv6 literals are valid hosts */
static void conf_host_literals(void)
{
	static const char *ok[] = {
		"192.0.2.1", "2001:db8::1", "[2001:db8::1]", "localhost",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		char text[256];
		const struct conf *c;

		T_CTX("host = %s", ok[i]);
		snprintf(text, sizeof(text), "[relay]\nhost = %s\n", ok[i]);
		if ((c = load_text(text, 0644)) == NULL)
			continue;
		T_STREQ(c->relays[0].host, ok[i]);
		conf_free(c);
	}
}

/* tls = none is allowed for a loopback relay only */
static void conf_tls_none_loopback_only(void)
{
	static const char *loop[] = { "127.0.0.1", "localhost", "::1",
				      "[::1]", "127.0.0.53" };
	const struct conf *c;

	for (size_t i = 0; i < sizeof(loop) / sizeof(*loop); i++) {
		char text[256];

		T_CTX("host = %s", loop[i]);
		snprintf(text, sizeof(text), "[relay]\nhost = %s\ntls = none\n",
			 loop[i]);
		if ((c = load_text(text, 0644)) != NULL)
			conf_free(c);
	}
	T_CTX("host = smtp.example.com");
	expect_error("[relay]\nhost = smtp.example.com\ntls = none\n", 0644,
		     ":1: [relay] tls = none is allowed only for a loopback "
		     "host, not smtp.example.com");
	T_CTX("host = 192.0.2.1");
	expect_error("[relay]\nhost = 192.0.2.1\ntls = none\n", 0644,
		     ":1: [relay] tls = none is allowed only");
}

/* without a port: 587 for starttls, 465 for tls, 25 for none */
static void conf_port_default_by_tls(void)
{
	static const struct {
		const char *text;
		unsigned port;
	} c[] = {
		{ "[relay]\nhost = smtp.example.com\n", 587 },
		{ "[relay]\nhost = smtp.example.com\ntls = starttls\n", 587 },
		{ "[relay]\nhost = smtp.example.com\ntls = tls\n", 465 },
		{ "[relay]\nhost = 127.0.0.1\ntls = none\n", 25 },
		{ "[relay]\nhost = smtp.example.com\ntls = tls\nport = 2465\n",
		  2465 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		const struct conf *conf;

		T_CTX("config %zu", i);
		if ((conf = load_text(c[i].text, 0644)) == NULL)
			continue;
		T_INTEQ(conf->relays[0].port, c[i].port);
		conf_free(conf);
	}
}

/* "; comment" after a value is not part of it */
static void conf_inline_comment(void)
{
	const struct conf *c = load_text("[relay] ; the relay\n"
					 "port = 2525 ; comment\n"
					 "host = smtp.example.com   ; x\n",
					 0644);

	if (c == NULL)
		return;
	T_INTEQ(c->relays[0].port, 2525);
	T_STREQ(c->relays[0].host, "smtp.example.com");
	conf_free(c);
}

/* [aliases]: names are looked up in any case */
static void conf_aliases(void)
{
	const struct conf *c = load_text("[aliases]\n"
					 "Postmaster = alice@example.com\n"
					 "root = a@x, Bob <b@y>\n", 0644);

	if (c == NULL)
		return;
	T_INTEQ(c->naliases, 2);
	T_STREQ(conf_alias(c, "postmaster"), "alice@example.com");
	T_STREQ(conf_alias(c, "POSTMASTER"), "alice@example.com");
	T_STREQ(conf_alias(c, "Root"), "a@x, Bob <b@y>");
	T_STREQ(conf_alias(c, "nobody"), NULL);
	T_STREQ(conf_alias(c, "root@example.com"), NULL);
	conf_free(c);
}

/* an alias without addresses, or given twice in any case, is refused */
static void conf_alias_errors(void)
{
	expect_error("[aliases]\nroot =\n", 0644, ":2: alias root: no address");
	expect_error("[aliases]\nroot = a@x\nROOT = b@y\n", 0644,
		     ":3: alias ROOT given twice");
}

/* -C naming a missing file or a directory is refused */
static void conf_cli_path_unusable(void)
{
	struct outcome o;
	char *dir = t_tmpdir();
	char *missing = t_path(dir, "nope.conf");

	try_load(&o, missing);
	T_INTEQ(o.status, EX_CONFIG);
	T_CONTAINS(o.err, "cannot open");
	try_load(&o, dir);
	T_INTEQ(o.status, EX_CONFIG);
	T_CONTAINS(o.err, "not a regular file");
	free(missing);
	free(dir);
}

/* localhost, 127.0.0.0/8 and ::1 are loopback; nothing else is */
static void conf_host_is_loopback_table(void)
{
	static const struct {
		const char *h;
		bool want;
	} c[] = {
		{ "localhost", true },
		{ "LocalHost", true },
		{ "127.0.0.1", true },
		{ "127.1.2.3", true },
		{ "127.255.255.255", true },
		{ "::1", true },
		{ "[::1]", true },
		{ "128.0.0.1", false },
		{ "10.0.0.1", false },
		{ "0.0.0.0", false },
		{ "126.255.255.255", false },
		{ "::2", false },
		{ "smtp.example.com", false },
		{ "localhost.example.com", false },
		{ "127.0.0.1.example.com", false },
		{ "127.1", false },
		{ "", false },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		T_CTX("host \"%s\"", c[i].h);
		T_INTEQ(conf_host_is_loopback(c[i].h), c[i].want);
	}
}

/* password_file: the first line of a file others cannot read */
static void conf_password_file_private(void)
{
	static const struct {
		const char *text;
		mode_t mode;
		const char *want;
	} c[] = {
		{ "s3cret\n", 0600, "s3cret" },
		{ "s3cret", 0600, "s3cret" },
		{ "s3cret\r\nsecond line\n", 0600, "s3cret" },
		{ "with space \n", 0640, "with space " },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct conf_relay conf = { 0 };
		char err[512] = "";
		char *pw;

		T_CTX("case %zu", i);
		conf.password_file = write_conf(c[i].text, c[i].mode);
		pw = conf_password(&conf, err, sizeof(err));
		T_STREQ(pw, c[i].want);
		free(pw);
		free(conf.password_file);
	}
}

/* a world-readable or missing password_file gives NULL and a reason */
static void conf_password_file_refused(void)
{
	struct conf_relay conf = { 0 };
	char err[512] = "";
	char *pw;

	conf.password_file = write_conf("s3cret\n", 0644);
	pw = conf_password(&conf, err, sizeof(err));
	T_STREQ(pw, NULL);
	T_CONTAINS(err, "readable by everyone");
	T_CONTAINS(err, "chmod o-rwx");
	T_CONTAINS(err, conf.password_file);
	T_CHECK(strstr(err, "s3cret") == NULL);
	free(pw);
	free(conf.password_file);

	err[0] = '\0';
	conf.password_file = "/nonexistent/outbox-unit/pw";
	T_STREQ(conf_password(&conf, err, sizeof(err)), NULL);
	T_CONTAINS(err, "/nonexistent/outbox-unit/pw");
}

/* password_command: the first line of its output, if it succeeds */
static void conf_password_command_output(void)
{
	static const struct {
		const char *cmd;
		const char *want;
	} c[] = {
		{ "echo secret", "secret" },
		{ "printf 'a\\nb'", "a" },
		{ "printf 'pw\\r\\n'", "pw" },
		{ "yes | head -n 100000", "y" },	/* rest is drained */
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct conf_relay conf = { 0 };
		char err[512] = "";
		char *pw;

		T_CTX("command %s", c[i].cmd);
		conf.password_command = (char *)c[i].cmd;
		pw = conf_password(&conf, err, sizeof(err));
		T_STREQ(pw, c[i].want);
		free(pw);
	}
}

/* a failing or silent password_command gives NULL and a reason */
static void conf_password_command_fails(void)
{
	static const struct {
		const char *cmd;
		const char *why;
	} c[] = {
		{ "false", "non-zero exit" },
		{ "echo secret; exit 3", "non-zero exit" },
		{ "true", "empty output" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		struct conf_relay conf = { 0 };
		char err[512] = "";
		char *pw;

		T_CTX("command %s", c[i].cmd);
		conf.password_command = (char *)c[i].cmd;
		pw = conf_password(&conf, err, sizeof(err));
		T_STREQ(pw, NULL);
		T_CONTAINS(err, "password_command failed");
		T_CONTAINS(err, c[i].why);
		T_CHECK(strstr(err, "secret") == NULL);
		free(pw);
	}
}

/* an inline password is copied; no source at all is an error */
static void conf_password_inline_and_none(void)
{
	struct conf_relay conf = { 0 };
	char err[512] = "";
	char *pw;

	conf.password = "inline";
	pw = conf_password(&conf, err, sizeof(err));
	T_STREQ(pw, "inline");
	T_CHECK(pw != conf.password);
	free(pw);
	conf.password = NULL;
	T_STREQ(conf_password(&conf, err, sizeof(err)), NULL);
	T_CONTAINS(err, "no password configured");
}

/* mkdir_p - mkdir -p path (mode 0700) */
static void mkdir_p(const char *path)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0700);
		*p = '/';
	}
	mkdir(tmp, 0700);
}

/* isolate - a lookup environment that finds nothing: HOME is an empty
 * directory, OUTBOX_CONFIG and XDG_CONFIG_HOME are unset */
static char *isolate(void)
{
	char *home = t_tmpdir();

	setenv("HOME", home, 1);
	unsetenv("OUTBOX_CONFIG");
	unsetenv("XDG_CONFIG_HOME");
	return home;
}

/* -C PATH wins over $OUTBOX_CONFIG */
static void conf_lookup_cli_wins(void)
{
	char *home = isolate();
	char *a = write_conf("[relay]\nport = 1001\n", 0644);
	char *b = write_conf("[relay]\nport = 1002\n", 0644);
	const struct conf *c;

	setenv("OUTBOX_CONFIG", a, 1);
	if ((c = load_safely(b)) != NULL) {
		T_STREQ(c->path, b);
		T_INTEQ(c->relays[0].port, 1002);
		conf_free(c);
	}
	free(a);
	free(b);
	free(home);
}

/* $OUTBOX_CONFIG wins over the XDG file */
static void conf_lookup_env_wins_over_xdg(void)
{
	char *home = isolate();
	char *xdg = t_tmpdir();
	char *dir = t_path(xdg, "outbox");
	char *xdgfile = t_path(dir, "outbox.conf");
	char *a = write_conf("[relay]\nport = 1001\n", 0644);
	const struct conf *c;

	mkdir_p(dir);
	T_CHECK(t_write_file(xdgfile, "[relay]\nport = 1003\n", 0644) == 0);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	setenv("OUTBOX_CONFIG", a, 1);
	if ((c = load_safely(NULL)) != NULL) {
		T_STREQ(c->path, a);
		T_INTEQ(c->relays[0].port, 1001);
		conf_free(c);
	}
	free(a);
	free(xdgfile);
	free(dir);
	free(xdg);
	free(home);
}

/* $XDG_CONFIG_HOME/outbox/outbox.conf is found; an empty $OUTBOX_CONFIG
 * does not count */
static void conf_lookup_xdg_found(void)
{
	char *home = isolate();
	char *xdg = t_tmpdir();
	char *dir = t_path(xdg, "outbox");
	char *xdgfile = t_path(dir, "outbox.conf");
	const struct conf *c;

	mkdir_p(dir);
	T_CHECK(t_write_file(xdgfile, "[relay]\nport = 1003\n", 0644) == 0);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	setenv("OUTBOX_CONFIG", "", 1);
	if ((c = load_safely(NULL)) != NULL) {
		T_STREQ(c->path, xdgfile);
		T_INTEQ(c->relays[0].port, 1003);
		conf_free(c);
	}
	free(xdgfile);
	free(dir);
	free(xdg);
	free(home);
}

/* without XDG_CONFIG_HOME (or with a relative one), $HOME/.config is used */
static void conf_lookup_home_config(void)
{
	char *home = isolate();
	char *dir = t_path(home, ".config/outbox");
	char *file = t_path(dir, "outbox.conf");
	const struct conf *c;

	mkdir_p(dir);
	T_CHECK(t_write_file(file, "[relay]\nport = 1004\n", 0644) == 0);
	if ((c = load_safely(NULL)) != NULL) {
		T_STREQ(c->path, file);
		conf_free(c);
	}
	setenv("XDG_CONFIG_HOME", "relative/dir", 1);
	if ((c = load_safely(NULL)) != NULL) {
		T_STREQ(c->path, file);
		conf_free(c);
	}
	free(file);
	free(dir);
	free(home);
}

/* no file anywhere: no path, no relay, the defaults */
static void conf_lookup_nothing_found(void)
{
	char *home = isolate();
	const struct conf *c;
	struct stat st;

	if (stat("/etc/outbox.conf", &st) == 0) {
		printf("SKIP %s: /etc/outbox.conf exists on this host\n",
		       __func__);
		free(home);
		return;
	}
	if ((c = load_safely(NULL)) != NULL) {
		T_STREQ(c->path, NULL);
		T_STREQ(c->relays[0].host, NULL);
		T_INTEQ(c->relays[0].port, 587);
		conf_free(c);
	}
	free(home);
}

/* several relays: [relay] and [relay:name] in file order, each with
 * its own keys and defaults */
static void conf_several_relays(void)
{
	const struct conf *c = load_text(
	    "[relay:work]\nhost = smtp.work.example\nuser = w\n"
	    "password_env = WORK_PW\nsenders = *@work.example\n"
	    "connections = 2\nmax_rate = 0.5\n"
	    "[relay]\nhost = smtp.example.com\ntls = tls\n"
	    "ip_version = 6\nsource = ::1\n"
	    "proxy = socks5h://127.0.0.1:1080\ntls_min_version = 1.3\n"
	    "pin_sha256 = ixkzUBshhNmRMvmB8cEQHZMwwy7Hh8e/57vmcHfG93w=;"
	    "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	    "address = 192.0.2.1\n", 0644);

	if (c == NULL)
		return;
	if (!T_INTEQ(c->nrelays, 2))
		goto out;
	T_STREQ(c->relays[0].name, "relay:work");
	T_INTEQ(c->relays[0].port, 587);
	T_INTEQ(c->relays[0].auth, AUTH_PLAIN | AUTH_LOGIN);
	T_INTEQ(c->relays[0].connections, 2);
	T_CHECK(c->relays[0].max_rate == 0.5);
	T_STREQ(c->relays[1].name, "relay");
	T_INTEQ(c->relays[1].port, 465);
	T_INTEQ(c->relays[1].auth, 0);
	T_INTEQ(c->relays[1].connections, 4);
	T_INTEQ(c->relays[1].ip_version, 6);
	T_INTEQ(c->relays[1].tls_min, 13);
	T_STREQ(c->relays[1].source, "::1");
	T_STREQ(c->relays[1].address, "192.0.2.1");
	T_STREQ(c->relays[1].proxy, "socks5h://127.0.0.1:1080");
	T_CHECK(conf_relay_serves(&c->relays[0], "Bob@WORK.example"));
	T_CHECK(!conf_relay_serves(&c->relays[0], "bob@home.example"));
	T_CHECK(conf_relay_serves(&c->relays[0], ""));
	T_CHECK(conf_relay_serves(&c->relays[1], "bob@home.example"));
	T_CHECK(conf_relay_for(c, "bob@home.example") == &c->relays[1]);
	T_CHECK(conf_relay_for(c, "x@work.example") == &c->relays[0]);
out:
	conf_free(c);
}

/* the new relay keys refuse bad values, each with its line */
static void conf_relay_key_values(void)
{
	static const struct {
		const char *line;
		const char *want;
	} c[] = {
		{ "auth = PLAIN GSSAPI", ":3: auth: expected a list of" },
		{ "ip_version = 5", ":3: ip_version: expected any, 4 or 6" },
		{ "tls_min_version = 1.1", ":3: tls_min_version: expected" },
		{ "connections = 0", ":3: connections: expected a number" },
		{ "connections = 65", ":3: connections: expected a number" },
		{ "max_rate = -1", ":3: max_rate: expected messages" },
		{ "source = example.com", ":3: source: not an IP address" },
		{ "proxy = http://p:3128", ":3: proxy: expected socks5://" },
		{ "proxy = socks5://p", ":3: proxy: expected socks5://" },
		{ "password_env = 1X", ":3: password_env: not an environment" },
		{ "oauth2_token_url = http://x/t", ":3: oauth2_token_url: "
		  "not an https:// URL" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(*c); i++) {
		char text[256];

		T_CTX("%s", c[i].line);
		snprintf(text, sizeof(text), "[relay:x]\nhost = h\n%s\n",
			 c[i].line);
		expect_error(text, 0600, c[i].want);
	}
}

/* the rules between relay keys */
static void conf_relay_key_rules(void)
{
	expect_error("[relay:b]\nport = 25\n", 0600,
		     ":1: [relay:b] needs host");
	expect_error("[relay]\nhost = h\nauth = EXTERNAL\n", 0600,
		     ":1: [relay] auth = EXTERNAL needs client_cert");
	expect_error("[relay]\nhost = h\nclient_key = /k\n", 0600,
		     ":1: [relay] client_key needs client_cert");
	expect_error("[relay]\nhost = h\nuser = u\noauth2_token_url = "
		     "https://t/\n", 0600, ":1: [relay] oauth2 needs");
	expect_error("[relay]\nhost = h\nuser = u\noauth2_token_url = "
		     "https://t/\noauth2_client_id = c\n"
		     "oauth2_refresh_token_file = /r\nauth = PLAIN\n", 0600,
		     ":1: [relay] oauth2 works with auth = XOAUTH2 or "
		     "OAUTHBEARER only");
	expect_error("[relay]\nhost = h\nuser = u\npassword = p\n"
		     "oauth2_token_url = https://t/\noauth2_client_id = c\n"
		     "oauth2_refresh_token_file = /r\n", 0600,
		     ":1: [relay] oauth2 needs");
	expect_error("[relay]\nhost = 127.0.0.1\ntls = none\nuser = u\n"
		     "password = p\n", 0600,
		     ":1: [relay] tls = none cannot authenticate");
	expect_error("[relay]\nhost = h\n[relay:b]\nhost = h2\n[relay]\n"
		     "host = h3\n", 0600, ":6: host given twice in [relay]");
	expect_error("[relay]\nhost = localhost\ntls = none\n"
		     "address = 192.0.2.1\n", 0600,
		     ":1: [relay] tls = none is allowed only for a loopback "
		     "host, not 192.0.2.1");
	expect_error("[relay]\nhost = localhost\ntls = none\n"
		     "proxy = socks5://127.0.0.1:1080\n", 0600,
		     ":1: [relay] tls = none is allowed only for a loopback "
		     "host");
	expect_error("[relay:eu/1]\nhost = h\n", 0600,
		     ":1: unknown section [relay:eu/1]");
	expect_error("[relay]\nhost = h\nauth = EXTERNAL PLAIN\n"
		     "client_cert = /c\nuser = u\npassword = p\n", 0600,
		     ":1: [relay] auth = EXTERNAL goes alone");
	expect_error("[relay]\nhost = h\nauth = PLAIN XOAUTH2\nuser = u\n"
		     "password = p\n", 0600,
		     ":1: [relay] auth: XOAUTH2 and OAUTHBEARER take a token,"
		     " not a password: do not mix them");
	expect_error("[relay]\nhost = h\ntimeout = 2d\n", 0600,
		     ":1: [relay] timeouts are at most 1d");
	expect_error("[relay]\nhost = h\nmax_rate = 0.00001\n", 0600,
		     ":3: max_rate: expected messages per second");
	expect_error("[relay]\nhost = h\npin_sha256 = /etc/pin.txt\n", 0600,
		     ":1: [relay] pin_sha256: expected base64 SHA-256");
}

/* oauth2 and EXTERNAL default their mechanisms; an OAuth2 client
 * secret makes a world-readable file an error */
static void conf_relay_auth_defaults(void)
{
	const struct conf *c = load_text(
	    "[relay]\nhost = h\nuser = u@gmail.com\n"
	    "oauth2_token_url = https://oauth2.example/token\n"
	    "oauth2_client_id = id\noauth2_client_secret = sec\n"
	    "oauth2_refresh_token_file = /r\n"
	    "[relay:cert]\nhost = h2\nclient_cert = /c.pem\n"
	    "auth = external\n", 0600);

	if (c == NULL)
		return;
	T_INTEQ(c->relays[0].auth, AUTH_XOAUTH2 | AUTH_OAUTHBEARER);
	T_INTEQ(c->relays[1].auth, AUTH_EXTERNAL);
	conf_free(c);
	expect_error("[relay]\nhost = h\nuser = u\n"
		     "oauth2_token_url = https://o/t\noauth2_client_id = id\n"
		     "oauth2_client_secret = sec\n"
		     "oauth2_refresh_token_file = /r\n", 0644,
		     ": holds a password");
}

/* password_env: the variable's value, or a reason naming it */
static void conf_password_env_source(void)
{
	struct conf_relay r = { .password_env = "OUTBOX_UNIT_PW" };
	char err[256] = "";
	char *pw;

	setenv("OUTBOX_UNIT_PW", "from-env", 1);
	pw = conf_password(&r, err, sizeof(err));
	T_STREQ(pw, "from-env");
	free(pw);
	unsetenv("OUTBOX_UNIT_PW");
	T_STREQ(conf_password(&r, err, sizeof(err)), NULL);
	T_CONTAINS(err, "password_env: OUTBOX_UNIT_PW is not set");
}

const struct t_test t_conf_tests[] = {
	T_ENTRY(conf_full_valid),
	T_ENTRY(conf_empty_file_defaults),
	T_ENTRY(conf_unknown_section),
	T_ENTRY(conf_unknown_key),
	T_ENTRY(conf_line_numbers_count_comments),
	T_ENTRY(conf_key_twice),
	T_ENTRY(conf_syntax_error),
	T_ENTRY(conf_bad_port),
	T_ENTRY(conf_good_port),
	T_ENTRY(conf_tls_values),
	T_ENTRY(conf_rewrite_from),
	T_ENTRY(conf_durations),
	T_ENTRY(conf_bad_durations),
	T_ENTRY(conf_line_too_long),
	T_ENTRY(conf_line_limit_matches_message),
	T_ENTRY(conf_password_world_readable),
	T_ENTRY(conf_password_group_readable_ok),
	T_ENTRY(conf_world_readable_without_password_ok),
	T_ENTRY(conf_password_sources_exclusive),
	T_ENTRY(conf_user_and_password_together),
	T_ENTRY(conf_relative_path),
	T_ENTRY(conf_bad_host_address_domain),
	T_ENTRY(conf_host_literals),
	T_ENTRY(conf_tls_none_loopback_only),
	T_ENTRY(conf_port_default_by_tls),
	T_ENTRY(conf_inline_comment),
	T_ENTRY(conf_aliases),
	T_ENTRY(conf_alias_errors),
	T_ENTRY(conf_cli_path_unusable),
	T_ENTRY(conf_host_is_loopback_table),
	T_ENTRY(conf_password_file_private),
	T_ENTRY(conf_password_file_refused),
	T_ENTRY(conf_password_command_output),
	T_ENTRY(conf_password_command_fails),
	T_ENTRY(conf_password_inline_and_none),
	T_ENTRY(conf_lookup_cli_wins),
	T_ENTRY(conf_lookup_env_wins_over_xdg),
	T_ENTRY(conf_lookup_xdg_found),
	T_ENTRY(conf_lookup_home_config),
	T_ENTRY(conf_lookup_nothing_found),
	T_ENTRY(conf_several_relays),
	T_ENTRY(conf_relay_key_values),
	T_ENTRY(conf_relay_key_rules),
	T_ENTRY(conf_relay_auth_defaults),
	T_ENTRY(conf_password_env_source),
	T_END
};
