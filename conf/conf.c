/*
 * NAME
 *	conf - the configuration file, loaded once and read-only after
 * DESCRIPTION
 *	See conf.h. Keys are described by one table (section, name, type,
 *	where the value goes); the libinih handler looks a key up, parses
 *	the value by its type and stores it. Anything unknown, repeated or
 *	malformed stops the program with "file:line: what is wrong".
 *
 *	libinih silently splits lines longer than its buffer and numbers
 *	lines its own way, so the file is fed through conf_reader(), which
 *	counts lines and refuses one that does not fit.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>

#include "conf/conf.h"
#include "message/addr.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"

#define CONF_LINE_MAX	4096	/* longest accepted line, newline included */
#define CONF_SECRET_MAX	4096	/* longest password or token */

enum conf_type {
	CT_STRING,	/* any text */
	CT_PATH,	/* absolute path */
	CT_HOST,	/* host name or IP literal */
	CT_PORT,	/* 1..65535 */
	CT_TLS,		/* starttls | tls | none */
	CT_SECONDS,	/* number with optional s/m/h/d/w suffix */
	CT_ADDRESS,	/* envelope-safe mail address */
	CT_DOMAIN,	/* host name */
	CT_REWRITE,	/* never | local | always */
	CT_BYTES,	/* number with optional k/m/g suffix */
};

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t offset;		/* into struct conf */
	bool secret;		/* makes a world-readable file an error */
};

#define K(sec, name, type, field, secret) \
	{ sec, name, type, offsetof(struct conf, field), secret }

static const struct conf_key conf_keys[] = {
	K("relay", "host", CT_HOST, relay.host, false),
	K("relay", "port", CT_PORT, relay.port, false),
	K("relay", "tls", CT_TLS, relay.tls, false),
	K("relay", "ca_file", CT_PATH, relay.ca_file, false),
	K("relay", "user", CT_STRING, relay.user, false),
	K("relay", "password", CT_STRING, relay.password, true),
	K("relay", "password_file", CT_PATH, relay.password_file, false),
	K("relay", "password_command", CT_STRING, relay.password_command,
	  false),
	K("relay", "helo", CT_DOMAIN, relay.helo, false),
	K("relay", "connect_timeout", CT_SECONDS, relay.connect_timeout,
	  false),
	K("relay", "timeout", CT_SECONDS, relay.timeout, false),
	K("relay", "data_timeout", CT_SECONDS, relay.data_timeout, false),
	K("mail", "from", CT_ADDRESS, mail.from, false),
	K("mail", "domain", CT_DOMAIN, mail.domain, false),
	K("mail", "rewrite_from", CT_REWRITE, mail.rewrite_from, false),
	K("mail", "max_size", CT_BYTES, mail.max_size, false),
	K("mail", "bounce_to", CT_ADDRESS, mail.bounce_to, false),
	K("queue", "dir", CT_PATH, queue.dir, false),
	K("queue", "max_age", CT_SECONDS, queue.max_age, false),
	K("queue", "retry_min", CT_SECONDS, queue.retry_min, false),
	K("queue", "retry_max", CT_SECONDS, queue.retry_max, false),
};

#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

struct conf_parse {
	struct conf *conf;
	const char *path;
	FILE *fp;
	unsigned lineno;
	unsigned err_line;		/* first error, 0 if none */
	char err[512];
	bool seen[CONF_NKEYS];
	bool has_secret;
};

/* conf_fail - remember the first error and its line */
static int conf_fail(struct conf_parse *p, const char *fmt, ...)
    LOG_FMT(2, 3);

static int conf_fail(struct conf_parse *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line == 0) {
		p->err_line = p->lineno ? p->lineno : 1;
		va_start(ap, fmt);
		vsnprintf(p->err, sizeof(p->err), fmt, ap);
		va_end(ap);
	}
	return 0;
}

/* conf_parse_number - a decimal number from min to max, nothing else */
static int conf_parse_number(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* conf_parse_bytes - "0", "512k", "10m", "1g" (powers of 1024) */
static int conf_parse_bytes(const char *v, long *out)
{
	char *end;
	long n, unit;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	unit = *end == '\0' ? 1 : strchr("kK", *end) ? 1L << 10 :
	    strchr("mM", *end) ? 1L << 20 : strchr("gG", *end) ? 1L << 30 : 0;
	if (errno || unit == 0 || (*end && end[1]) || n > LONG_MAX / unit)
		return -1;
	*out = n * unit;
	return 0;
}

/* conf_parse_seconds - "90", "90s", "5m", "1h", "5d", "1w" */
static int conf_parse_seconds(const char *v, long *out)
{
	char *end;
	long n, unit = 1;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || n <= 0)
		return -1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return -1;
	}
	if (*end && end[1] != '\0')
		return -1;
	if (n > 10L * 366 * 86400 / unit)
		return -1;
	*out = n * unit;
	return 0;
}

/* conf_check_host - host name, IPv4 or IPv6 literal (brackets allowed) */
static int conf_check_host(const char *v)
{
	char tmp[64];
	size_t len = strlen(v);
	struct in6_addr a6;

	if (v[0] == '[' && len > 2 && v[len - 1] == ']') {
		if (len - 2 >= sizeof(tmp))
			return -1;
		memcpy(tmp, v + 1, len - 2);
		tmp[len - 2] = '\0';
		return inet_pton(AF_INET6, tmp, &a6) == 1 ? 0 : -1;
	}
	if (strchr(v, ':'))
		return inet_pton(AF_INET6, v, &a6) == 1 ? 0 : -1;
	return addr_check_domain(v);
}

/* conf_store - parse value v as key k's type and store it */
static int conf_store(struct conf_parse *p, const struct conf_key *k,
		      const char *v)
{
	char *field = (char *)p->conf + k->offset;
	const char *why;
	long n;

	switch (k->type) {
	case CT_PATH:
		if (v[0] != '/')
			return conf_fail(p, "%s: must be an absolute path",
					 k->name);
		break;
	case CT_HOST:
		if (conf_check_host(v) < 0)
			return conf_fail(p, "%s: not a host name or address: "
					 "%s", k->name, v);
		break;
	case CT_DOMAIN:
		if (addr_check_domain(v) < 0)
			return conf_fail(p, "%s: not a domain name: %s",
					 k->name, v);
		break;
	case CT_ADDRESS:
		if ((why = addr_check_envelope(v)) != NULL)
			return conf_fail(p, "%s: %s: %s", k->name, why, v);
		break;
	case CT_PORT:
		if (conf_parse_number(v, 1, 65535, &n) < 0)
			return conf_fail(p, "%s: not a port number (1-65535):"
					 " %s", k->name, v);
		*(unsigned *)(void *)field = (unsigned)n;
		return 1;
	case CT_TLS:
		if (strcmp(v, "starttls") == 0)
			*(enum conf_tls *)(void *)field = CONF_TLS_STARTTLS;
		else if (strcmp(v, "tls") == 0)
			*(enum conf_tls *)(void *)field = CONF_TLS_IMPLICIT;
		else if (strcmp(v, "none") == 0)
			*(enum conf_tls *)(void *)field = CONF_TLS_NONE;
		else
			return conf_fail(p, "tls: expected starttls, tls or "
					 "none, not %s", v);
		return 1;
	case CT_REWRITE:
		if (strcmp(v, "never") == 0)
			*(enum conf_rewrite *)(void *)field = REWRITE_NEVER;
		else if (strcmp(v, "local") == 0)
			*(enum conf_rewrite *)(void *)field = REWRITE_LOCAL;
		else if (strcmp(v, "always") == 0)
			*(enum conf_rewrite *)(void *)field = REWRITE_ALWAYS;
		else
			return conf_fail(p, "rewrite_from: expected never, "
					 "local or always, not %s", v);
		return 1;
	case CT_BYTES:
		if (conf_parse_bytes(v, &n) < 0)
			return conf_fail(p, "%s: not a size (like 0, 10m, 1g):"
					 " %s", k->name, v);
		*(long *)(void *)field = n;
		return 1;
	case CT_SECONDS:
		if (conf_parse_seconds(v, &n) < 0)
			return conf_fail(p, "%s: not a duration (like 30, 5m,"
					 " 2h, 5d): %s", k->name, v);
		*(long *)(void *)field = n;
		return 1;
	case CT_STRING:
		break;
	}
	*(char **)(void *)field = xstrdup(v);
	return 1;
}

/* conf_add_alias - [aliases] name = address list */
static int conf_add_alias(struct conf_parse *p, const char *name,
			  const char *value)
{
	struct conf *c = p->conf;
	struct conf_alias *a;

	if (*value == '\0')
		return conf_fail(p, "alias %s: no address", name);
	if (conf_alias(c, name))
		return conf_fail(p, "alias %s given twice", name);
	c->aliases = xrealloc(c->aliases, (c->naliases + 1) * sizeof(*a));
	a = &c->aliases[c->naliases++];
	a->name = xstrdup(name);
	for (char *s = a->name; *s; s++)
		*s = (char)tolower((unsigned char)*s);
	a->addrs = xstrdup(value);
	return 1;
}

/* conf_dkim_section - the key set of [dkim] or [dkim:label], made on
 * first use */
static struct conf_dkim *conf_dkim_section(struct conf_parse *p,
					   const char *section)
{
	struct conf *c = p->conf;

	for (size_t i = 0; i < c->ndkim; i++)
		if (strcmp(c->dkim[i].label, section) == 0)
			return &c->dkim[i];
	c->dkim = xrealloc(c->dkim, (c->ndkim + 1) * sizeof(*c->dkim));
	memset(&c->dkim[c->ndkim], 0, sizeof(*c->dkim));
	c->dkim[c->ndkim].label = xstrdup(section);
	c->dkim[c->ndkim].line = p->lineno;
	return &c->dkim[c->ndkim++];
}

/* conf_dkim_canon - "relaxed/simple", or one word for both */
static int conf_dkim_canon(struct conf_dkim *k, const char *v)
{
	const char *slash = strchr(v, '/');
	const char *body = slash ? slash + 1 : v;
	size_t hlen = slash ? (size_t)(slash - v) : strlen(v);

	if (!((hlen == 6 && strncmp(v, "simple", 6) == 0) ||
	      (hlen == 7 && strncmp(v, "relaxed", 7) == 0)) ||
	    (strcmp(body, "simple") && strcmp(body, "relaxed")))
		return -1;
	k->simple_header = hlen == 6;
	k->simple_body = strcmp(body, "simple") == 0;
	return 0;
}

/* conf_dkim_key - one key = value in a DKIM section */
static int conf_dkim_key(struct conf_parse *p, const char *section,
			 const char *name, const char *v)
{
	struct conf_dkim *k = conf_dkim_section(p, section);
	char **field = strcmp(name, "domain") == 0 ? &k->domain :
	    strcmp(name, "selector") == 0 ? &k->selector :
	    strcmp(name, "key_file") == 0 ? &k->key_file :
	    strcmp(name, "headers") == 0 ? &k->headers :
	    strcmp(name, "sender_domains") == 0 ? &k->sender_domains : NULL;

	if (strcmp(name, "canonicalization") == 0)
		return conf_dkim_canon(k, v) == 0 ? 1 :
		    conf_fail(p, "canonicalization: expected relaxed or simple,"
			      " or header/body like relaxed/simple, not %s", v);
	if (field == NULL)
		return conf_fail(p, "unknown key %s in [%s]", name, section);
	if (*field)
		return conf_fail(p, "%s given twice in [%s]", name, section);
	if (field == &k->domain && addr_check_domain(v) < 0)
		return conf_fail(p, "domain: not a domain name: %s", v);
	if (field == &k->selector && (addr_check_domain(v) < 0 ||
				      strchr(v, '.')))
		return conf_fail(p, "selector: not a DNS label: %s", v);
	if (field == &k->key_file && v[0] != '/')
		return conf_fail(p, "key_file: must be an absolute path");
	*field = xstrdup(v);
	return 1;
}

/* conf_is_dkim - [dkim] or [dkim:label] */
static bool conf_is_dkim(const char *section, size_t len)
{
	return (len == 4 && strncmp(section, "dkim", 4) == 0) ||
	    (len > 5 && strncmp(section, "dkim:", 5) == 0);
}

/* conf_handler - libinih callback: one key = value */
static int conf_handler(void *user, const char *section, const char *name,
			const char *value)
{
	struct conf_parse *p = user;

	if (p->err_line)
		return 0;
	if (strcmp(section, "aliases") == 0)
		return conf_add_alias(p, name, value);
	if (conf_is_dkim(section, strlen(section)))
		return conf_dkim_key(p, section, name, value);
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (strcmp(k->section, section) || strcmp(k->name, name))
			continue;
		if (p->seen[i])
			return conf_fail(p, "%s given twice in [%s]", name,
					 section);
		p->seen[i] = true;
		p->has_secret |= k->secret;
		return conf_store(p, k, value);
	}
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return conf_fail(p, "unknown key %s in [%s]", name,
					 section);
	return conf_fail(p, "unknown section [%s]", section);
}

/* conf_section_known - is name one of the sections outbox reads */
static bool conf_section_known(const char *name, size_t len)
{
	if ((len == 7 && strncmp(name, "aliases", 7) == 0) ||
	    conf_is_dkim(name, len))
		return true;
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strlen(conf_keys[i].section) == len &&
		    strncmp(conf_keys[i].section, name, len) == 0)
			return true;
	return false;
}

/* conf_check_section - a "[name]" line must name a known section; this
 * is checked here because libinih does not report empty sections */
static void conf_check_section(struct conf_parse *p, const char *line)
{
	const char *end;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line != '[' || (end = strchr(line, ']')) == NULL)
		return;
	if (!conf_section_known(line + 1, (size_t)(end - line - 1)))
		conf_fail(p, "unknown section [%.*s]", (int)(end - line - 1),
			  line + 1);
}

/* conf_reader - fgets for libinih that counts lines and refuses long ones */
static char *conf_reader(char *str, int num, void *user)
{
	struct conf_parse *p = user;
	size_t len;

	if (p->err_line || fgets(str, num, p->fp) == NULL)
		return NULL;
	p->lineno++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(p->fp)) {
		conf_fail(p, "line too long (the limit is %d bytes)",
			  CONF_LINE_MAX - 2);
		return NULL;
	}
	conf_check_section(p, str);
	return p->err_line ? NULL : str;
}

/* conf_find - the first configuration file that the lookup order names */
static char *conf_find(const char *cli_path)
{
	const char *env = getenv("OUTBOX_CONFIG");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	struct buf b = BUF_INIT(PATH_MAX);

	if (cli_path)
		return xstrdup(cli_path);
	if (env && *env)
		return xstrdup(env);
	if (xdg && xdg[0] == '/')
		buf_printf(&b, "%s/outbox/outbox.conf", xdg);
	else
		buf_printf(&b, "%s/.config/outbox/outbox.conf", sys_home());
	if (access(buf_str(&b), F_OK) == 0)
		return buf_steal(&b);
	buf_free(&b);
	if (access("/etc/outbox.conf", F_OK) == 0)
		return xstrdup("/etc/outbox.conf");
	return NULL;
}

/* conf_parse_file - read path into c, or die */
static void conf_parse_file(struct conf *c, const char *path)
{
	struct conf_parse p = { .conf = c, .path = path };
	struct stat st;
	int rc;

	if ((p.fp = fopen(path, "re")) == NULL)
		log_die(EX_CONFIG, "%s: cannot open: %m", path);
	if (fstat(fileno(p.fp), &st) < 0 || !S_ISREG(st.st_mode))
		log_die(EX_CONFIG, "%s: not a regular file", path);
#ifdef HAVE_INI_GLOBALS
	ini_max_line = CONF_LINE_MAX;
	ini_allow_multiline = false;
#endif
	rc = ini_parse_stream(conf_reader, &p, conf_handler, &p);
	fclose(p.fp);
	if (p.err_line)
		log_die(EX_CONFIG, "%s:%u: %s", path, p.err_line, p.err);
	if (rc > 0)
		log_die(EX_CONFIG, "%s:%d: syntax error (expected [section] "
			"or key = value)", path, rc);
	if (rc < 0)
		log_die(EX_CONFIG, "%s: cannot parse (error %d)", path, rc);
	if (p.has_secret && (st.st_mode & S_IROTH))
		log_die(EX_CONFIG, "%s: holds a password but is readable by "
			"everyone; run: chmod o-rwx %s", path, path);
}

/* conf_check_relay - rules that involve several relay keys */
static void conf_check_relay(struct conf *c)
{
	struct conf_relay *r = &c->relay;
	const char *f = c->path;
	int sources = !!r->password + !!r->password_file +
	    !!r->password_command;

	if (sources > 1)
		log_die(EX_CONFIG, "%s: [relay] password, password_file and "
			"password_command exclude each other", f);
	if (r->user && sources == 0)
		log_die(EX_CONFIG, "%s: [relay] user is set but no password,"
			" password_file or password_command", f);
	if (!r->user && sources)
		log_die(EX_CONFIG, "%s: [relay] a password is set but no user",
			f);
	if (r->tls == CONF_TLS_NONE && r->host &&
	    !conf_host_is_loopback(r->host))
		log_die(EX_CONFIG, "%s: [relay] tls = none is allowed only for"
			" a loopback host, not %s", f, r->host);
	if (r->port == 0)
		r->port = r->tls == CONF_TLS_IMPLICIT ? 465 :
		    r->tls == CONF_TLS_NONE ? 25 : 587;
}

/* conf_check_dkim - every DKIM section names a domain, selector and key */
static void conf_check_dkim(struct conf *c)
{
	for (size_t i = 0; i < c->ndkim; i++) {
		const struct conf_dkim *k = &c->dkim[i];
		const char *missing = !k->domain ? "domain" : !k->selector ?
		    "selector" : !k->key_file ? "key_file" : NULL;

		if (missing)
			log_die(EX_CONFIG, "%s:%u: [%s] needs %s", c->path,
				k->line, k->label, missing);
	}
}

/* conf_load - find, parse and check the configuration, or die */
const struct conf *conf_load(const char *cli_path)
{
	struct conf *c = xcalloc(1, sizeof(*c));

	c->relay.tls = CONF_TLS_STARTTLS;
	c->relay.connect_timeout = 30;
	c->relay.timeout = 60;
	c->relay.data_timeout = 600;
	c->queue.max_age = 5 * 86400;
	c->queue.retry_min = 60;
	c->queue.retry_max = 3600;
	c->path = conf_find(cli_path);
	if (c->path)
		conf_parse_file(c, c->path);
	conf_check_relay(c);
	conf_check_dkim(c);
	if (c->queue.retry_min > c->queue.retry_max)
		log_die(EX_CONFIG, "%s: [queue] retry_min is larger than "
			"retry_max", c->path);
	return c;
}

/* conf_free - release a configuration at the end of the program */
void conf_free(const struct conf *cc)
{
	struct conf *c = (struct conf *)cc;
	char **strs[] = { &c->path, &c->relay.host, &c->relay.ca_file,
		&c->relay.user, &c->relay.password, &c->relay.password_file,
		&c->relay.password_command, &c->relay.helo, &c->mail.from,
		&c->mail.domain, &c->mail.bounce_to, &c->queue.dir };

	if (c->relay.password)
		explicit_bzero(c->relay.password, strlen(c->relay.password));
	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
		free(*strs[i]);
	for (size_t i = 0; i < c->naliases; i++) {
		free(c->aliases[i].name);
		free(c->aliases[i].addrs);
	}
	free(c->aliases);
	for (size_t i = 0; i < c->ndkim; i++) {
		struct conf_dkim *k = &c->dkim[i];

		free(k->label);
		free(k->domain);
		free(k->selector);
		free(k->key_file);
		free(k->headers);
		free(k->sender_domains);
	}
	free(c->dkim);
	free(c);
}

/* conf_domain - [mail] domain, else this host's FQDN */
const char *conf_domain(const struct conf *c)
{
	return c->mail.domain ? c->mail.domain : sys_fqdn();
}

/* conf_alias - the address list for a local name, or NULL */
const char *conf_alias(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->naliases; i++)
		if (strcasecmp(c->aliases[i].name, name) == 0)
			return c->aliases[i].addrs;
	return NULL;
}

/* conf_host_is_loopback - localhost, 127.0.0.0/8 or ::1 */
bool conf_host_is_loopback(const char *h)
{
	struct in_addr a4;

	if (strcasecmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
	    strcmp(h, "[::1]") == 0)
		return true;
	return inet_pton(AF_INET, h, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127;
}

/* conf_first_line - the first line of fp, without its newline */
static char *conf_first_line(FILE *fp)
{
	struct buf b = BUF_INIT(CONF_SECRET_MAX);
	int ch;

	while ((ch = getc(fp)) != EOF && ch != '\n')
		if (buf_putc(&b, (char)ch) < 0)
			break;
	if (b.len && b.data[b.len - 1] == '\r')
		b.data[--b.len] = '\0';
	return buf_steal(&b);
}

/* conf_open_secret - open a file that holds a secret (what names it in
 * messages); one that everyone can read is refused, checked on the open
 * descriptor */
FILE *conf_open_secret(const char *what, const char *path, char *err,
		       size_t errlen)
{
	FILE *fp = fopen(path, "re");
	struct stat st;

	if (fp == NULL) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & S_IROTH)) {
		fclose(fp);
		snprintf(err, errlen, "%s %s is readable by everyone; run: "
			 "chmod o-rwx %s", what, path, path);
		return NULL;
	}
	return fp;
}

/* conf_password_file - first line of a file nobody else may read */
static char *conf_password_file(const char *path, char *err, size_t errlen)
{
	FILE *fp = conf_open_secret("password_file", path, err, errlen);
	char *pw;

	if (fp == NULL)
		return NULL;
	pw = conf_first_line(fp);
	fclose(fp);
	return pw;
}

/* conf_password_command - first line of a command's output */
static char *conf_password_command(const char *cmd, char *err, size_t errlen)
{
	FILE *fp = popen(cmd, "re");
	char *pw;
	int status;

	if (fp == NULL) {
		snprintf(err, errlen, "password_command: %s", strerror(errno));
		return NULL;
	}
	pw = conf_first_line(fp);
	while (getc(fp) != EOF)
		;
	status = pclose(fp);
	if (status != 0 || *pw == '\0') {
		snprintf(err, errlen, "password_command failed (%s)",
			 status != 0 ? "non-zero exit" : "empty output");
		free(pw);
		return NULL;
	}
	return pw;
}

/* conf_password - the relay password now, or NULL with err set */
char *conf_password(const struct conf *c, char *err, size_t errlen)
{
	const struct conf_relay *r = &c->relay;

	if (r->password)
		return xstrdup(r->password);
	if (r->password_file)
		return conf_password_file(r->password_file, err, errlen);
	if (r->password_command)
		return conf_password_command(r->password_command, err, errlen);
	snprintf(err, errlen, "no password configured");
	return NULL;
}
