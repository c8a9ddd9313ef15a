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
#include <fnmatch.h>
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
	CT_IP,		/* IP literal */
	CT_PORT,	/* 1..65535 */
	CT_TLS,		/* starttls | tls | none */
	CT_TLS_MIN,	/* 1.2 | 1.3 */
	CT_IP_VERSION,	/* any | 4 | 6 */
	CT_AUTH,	/* list of SASL mechanisms */
	CT_COUNT,	/* 1..CONF_COUNT_MAX */
	CT_RATE,	/* positive decimal */
	CT_SECONDS,	/* number with optional s/m/h/d/w suffix */
	CT_ADDRESS,	/* envelope-safe mail address */
	CT_DOMAIN,	/* host name */
	CT_REWRITE,	/* never | local | always */
	CT_BYTES,	/* number with optional k/m/g suffix */
	CT_ENV,		/* environment variable name */
	CT_HTTPS,	/* https:// URL */
	CT_PROXY,	/* socks5://host:port or socks5h://host:port */
};

struct conf_key {
	const char *section;	/* "relay" for [relay] and [relay:name] */
	const char *name;
	enum conf_type type;
	size_t offset;		/* into struct conf, or struct conf_relay */
	bool secret;		/* makes a world-readable file an error */
};

#define K(sec, name, type, field, secret) \
	{ sec, name, type, offsetof(struct conf, field), secret }
#define R(name, type, field, secret) \
	{ "relay", name, type, offsetof(struct conf_relay, field), secret }

/* keys of each relay section; at most 64 (the seen mask) */
static const struct conf_key relay_keys[] = {
	R("host", CT_HOST, host, false),
	R("address", CT_HOST, address, false),
	R("port", CT_PORT, port, false),
	R("tls", CT_TLS, tls, false),
	R("tls_min_version", CT_TLS_MIN, tls_min, false),
	R("ca_file", CT_PATH, ca_file, false),
	R("ca_path", CT_PATH, ca_path, false),
	R("pin_sha256", CT_STRING, pin_sha256, false),
	R("client_cert", CT_PATH, client_cert, false),
	R("client_key", CT_PATH, client_key, false),
	R("user", CT_STRING, user, false),
	R("password", CT_STRING, password, true),
	R("password_file", CT_PATH, password_file, false),
	R("password_command", CT_STRING, password_command, false),
	R("password_env", CT_ENV, password_env, false),
	R("auth", CT_AUTH, auth, false),
	R("oauth2_token_url", CT_HTTPS, oauth2_token_url, false),
	R("oauth2_client_id", CT_STRING, oauth2_client_id, false),
	R("oauth2_client_secret", CT_STRING, oauth2_client_secret, true),
	R("oauth2_refresh_token_file", CT_PATH, oauth2_refresh_token_file,
	  false),
	R("oauth2_scope", CT_STRING, oauth2_scope, false),
	R("oauth2_ca_file", CT_PATH, oauth2_ca_file, false),
	R("helo", CT_DOMAIN, helo, false),
	R("senders", CT_STRING, senders, false),
	R("ip_version", CT_IP_VERSION, ip_version, false),
	R("source", CT_IP, source, false),
	R("proxy", CT_PROXY, proxy, false),
	R("connections", CT_COUNT, connections, false),
	R("max_rate", CT_RATE, max_rate, false),
	R("connect_timeout", CT_SECONDS, connect_timeout, false),
	R("timeout", CT_SECONDS, timeout, false),
	R("data_timeout", CT_SECONDS, data_timeout, false),
};

#define RELAY_NKEYS (sizeof(relay_keys) / sizeof(relay_keys[0]))

static const struct conf_key conf_keys[] = {
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
	FILE *fp;
	unsigned lineno;
	unsigned err_line;		/* first error, 0 if none */
	unsigned section_line;		/* of the last "[section]" */
	char err[512];
	bool seen[CONF_NKEYS];
	unsigned long long *relay_seen;	/* per relay, bit per relay key */
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

/* conf_check_ip - an IPv4 or IPv6 literal */
static int conf_check_ip(const char *v)
{
	struct in6_addr a;

	return inet_pton(AF_INET, v, &a) == 1 ||
	    inet_pton(AF_INET6, v, &a) == 1 ? 0 : -1;
}

/* conf_check_env - a portable environment variable name */
static int conf_check_env(const char *v)
{
	if (!isalpha((unsigned char)*v) && *v != '_')
		return -1;
	for (; *v; v++)
		if (!isalnum((unsigned char)*v) && *v != '_')
			return -1;
	return 0;
}

/* conf_check_proxy - socks5[h]://host:port and nothing else */
static int conf_check_proxy(const char *v)
{
	const char *hp = strncmp(v, "socks5://", 9) == 0 ? v + 9 :
	    strncmp(v, "socks5h://", 10) == 0 ? v + 10 : NULL;
	const char *colon = hp ? strrchr(hp, ':') : NULL;
	char host[256];
	long port;

	if (colon == NULL || (size_t)(colon - hp) >= sizeof(host) ||
	    conf_parse_number(colon + 1, 1, 65535, &port) < 0)
		return -1;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	return host[0] ? conf_check_host(host) : -1;
}

static const struct {
	const char *name;
	unsigned bit;
} conf_mechs[] = {
	{ "PLAIN", AUTH_PLAIN }, { "LOGIN", AUTH_LOGIN },
	{ "CRAM-MD5", AUTH_CRAM_MD5 }, { "XOAUTH2", AUTH_XOAUTH2 },
	{ "OAUTHBEARER", AUTH_OAUTHBEARER }, { "EXTERNAL", AUTH_EXTERNAL },
};

/* conf_auth_name - the SASL name of one AUTH_* bit */
const char *conf_auth_name(unsigned mech)
{
	for (size_t i = 0; i < sizeof(conf_mechs) / sizeof(*conf_mechs); i++)
		if (conf_mechs[i].bit == mech)
			return conf_mechs[i].name;
	return "?";
}

/* conf_parse_auth - "PLAIN LOGIN", "xoauth2, oauthbearer": AUTH_* bits */
static int conf_parse_auth(const char *v, unsigned *out)
{
	char word[32];
	size_t n;

	*out = 0;
	while (*v) {
		size_t i;

		v += strspn(v, " \t,");
		if ((n = strcspn(v, " \t,")) == 0)
			break;
		if (n >= sizeof(word))
			return -1;
		memcpy(word, v, n);
		word[n] = '\0';
		v += n;
		for (i = 0; i < sizeof(conf_mechs) / sizeof(*conf_mechs); i++)
			if (strcasecmp(word, conf_mechs[i].name) == 0)
				break;
		if (i == sizeof(conf_mechs) / sizeof(*conf_mechs))
			return -1;
		*out |= conf_mechs[i].bit;
	}
	return *out ? 0 : -1;
}

/* conf_parse_rate - a decimal from one a day to 1000 a second */
static int conf_parse_rate(const char *v, double *out)
{
	char *end;
	double d;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	d = strtod(v, &end);
	if (errno || *end || !(d >= 1.0 / 86400) || d > 1000)
		return -1;
	*out = d;
	return 0;
}

/* conf_store_enum - the keys whose value is one of a few words or a
 * small number */
static int conf_store_enum(struct conf_parse *p, const struct conf_key *k,
			   char *field, const char *v)
{
	long n;

	switch (k->type) {
	case CT_TLS_MIN:
		if (strcmp(v, "1.2") != 0 && strcmp(v, "1.3") != 0)
			return conf_fail(p, "%s: expected 1.2 or 1.3, not %s",
					 k->name, v);
		*(int *)(void *)field = v[2] == '2' ? 12 : 13;
		return 1;
	case CT_IP_VERSION:
		if (strcmp(v, "any") != 0 && strcmp(v, "4") != 0 &&
		    strcmp(v, "6") != 0)
			return conf_fail(p, "%s: expected any, 4 or 6, not %s",
					 k->name, v);
		*(int *)(void *)field = *v == 'a' ? 0 : *v - '0';
		return 1;
	case CT_AUTH:
		if (conf_parse_auth(v, (unsigned *)(void *)field) < 0)
			return conf_fail(p, "%s: expected a list of PLAIN, "
					 "LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER"
					 " or EXTERNAL, not %s", k->name, v);
		return 1;
	case CT_COUNT:
		if (conf_parse_number(v, 1, CONF_COUNT_MAX, &n) < 0)
			return conf_fail(p, "%s: expected a number from 1 to "
					 "%d, not %s", k->name, CONF_COUNT_MAX,
					 v);
		*(long *)(void *)field = n;
		return 1;
	default:
		if (conf_parse_rate(v, (double *)(void *)field) < 0)
			return conf_fail(p, "%s: expected messages per second "
					 "(like 14 or 0.5), not %s", k->name,
					 v);
		return 1;
	}
}

/* conf_store - parse value v as key k's type and store it in base */
static int conf_store(struct conf_parse *p, const struct conf_key *k,
		      void *base, const char *v)
{
	char *field = (char *)base + k->offset;
	const char *why;
	long n;

	switch (k->type) {
	case CT_IP:
		if (conf_check_ip(v) < 0)
			return conf_fail(p, "%s: not an IP address: %s",
					 k->name, v);
		break;
	case CT_ENV:
		if (conf_check_env(v) < 0)
			return conf_fail(p, "%s: not an environment variable "
					 "name: %s", k->name, v);
		break;
	case CT_HTTPS:
		if (strncmp(v, "https://", 8) != 0 || v[8] == '\0' ||
		    strpbrk(v, " \t"))
			return conf_fail(p, "%s: not an https:// URL: %s",
					 k->name, v);
		break;
	case CT_PROXY:
		if (conf_check_proxy(v) < 0)
			return conf_fail(p, "proxy: expected socks5://host:port"
					 " or socks5h://host:port, not %s", v);
		break;
	case CT_TLS_MIN:
	case CT_IP_VERSION:
	case CT_AUTH:
	case CT_COUNT:
	case CT_RATE:
		return conf_store_enum(p, k, field, v);
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
	c->dkim[c->ndkim].line = p->section_line;
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
	    (strcmp(body, "simple") != 0 && strcmp(body, "relaxed") != 0))
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

/* conf_is_relay - [relay] or [relay:name]; the name becomes part of
 * file names in the spool, so it is letters, digits, '.', '_', '-' */
static bool conf_is_relay(const char *section, size_t len)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

	if (len == 5 && strncmp(section, "relay", 5) == 0)
		return true;
	return len > 6 && len <= 64 && strncmp(section, "relay:", 6) == 0 &&
	    section[6] != '.' && strspn(section + 6, ok) == len - 6;
}

/* conf_relay_defaults - a relay section's values before its keys */
static void conf_relay_defaults(struct conf_relay *r)
{
	r->tls = CONF_TLS_STARTTLS;
	r->tls_min = 12;
	r->connections = 4;
	r->connect_timeout = 30;
	r->timeout = 60;
	r->data_timeout = 600;
}

/* conf_relay_section - the relay of [relay] or [relay:name], made on
 * first use; its index is *idx */
static struct conf_relay *conf_relay_section(struct conf_parse *p,
					     const char *section, size_t *idx)
{
	struct conf *c = p->conf;
	struct conf_relay *r;

	for (*idx = 0; *idx < c->nrelays; (*idx)++)
		if (strcmp(c->relays[*idx].name, section) == 0)
			return &c->relays[*idx];
	c->relays = xrealloc(c->relays, (c->nrelays + 1) * sizeof(*r));
	p->relay_seen = xrealloc(p->relay_seen, (c->nrelays + 1) *
				 sizeof(*p->relay_seen));
	p->relay_seen[c->nrelays] = 0;
	r = &c->relays[c->nrelays++];
	memset(r, 0, sizeof(*r));
	conf_relay_defaults(r);
	r->name = xstrdup(section);
	r->line = p->section_line;
	return r;
}

/* conf_relay_key - one key = value in a relay section */
static int conf_relay_key(struct conf_parse *p, const char *section,
			  const char *name, const char *value)
{
	size_t idx;
	struct conf_relay *r = conf_relay_section(p, section, &idx);

	for (size_t i = 0; i < RELAY_NKEYS; i++) {
		const struct conf_key *k = &relay_keys[i];

		if (strcmp(k->name, name) != 0)
			continue;
		if (p->relay_seen[idx] & (1ULL << i))
			return conf_fail(p, "%s given twice in [%s]", name,
					 section);
		p->relay_seen[idx] |= 1ULL << i;
		p->has_secret |= k->secret;
		return conf_store(p, k, r, value);
	}
	return conf_fail(p, "unknown key %s in [%s]", name, section);
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
	if (conf_is_relay(section, strlen(section)))
		return conf_relay_key(p, section, name, value);
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (strcmp(k->section, section) != 0 ||
		    strcmp(k->name, name) != 0)
			continue;
		if (p->seen[i])
			return conf_fail(p, "%s given twice in [%s]", name,
					 section);
		p->seen[i] = true;
		p->has_secret |= k->secret;
		return conf_store(p, k, p->conf, value);
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
	    conf_is_dkim(name, len) || conf_is_relay(name, len))
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
	p->section_line = p->lineno;
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
	struct conf_parse p = { .conf = c };
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
	free(p.relay_seen);
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

/* conf_relay_free - one relay's strings, the secret ones wiped */
static void conf_relay_free(struct conf_relay *r)
{
	char **strs[] = { &r->name, &r->host, &r->address, &r->ca_file,
		&r->ca_path, &r->pin_sha256, &r->client_cert, &r->client_key,
		&r->user, &r->password, &r->password_file,
		&r->password_command, &r->password_env, &r->oauth2_token_url,
		&r->oauth2_client_id, &r->oauth2_client_secret,
		&r->oauth2_refresh_token_file, &r->oauth2_scope,
		&r->oauth2_ca_file, &r->helo, &r->senders, &r->source,
		&r->proxy };

	if (r->password)
		explicit_bzero(r->password, strlen(r->password));
	if (r->oauth2_client_secret)
		explicit_bzero(r->oauth2_client_secret,
			       strlen(r->oauth2_client_secret));
	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
		free(*strs[i]);
}

/* conf_relay_fail - a rule about r's keys is broken: stop */
static void conf_relay_fail(const struct conf *c, const struct conf_relay *r,
			    const char *fmt, ...) LOG_FMT(3, 4);

static void conf_relay_fail(const struct conf *c, const struct conf_relay *r,
			    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_die(EX_CONFIG, "%s:%u: [%s] %s", c->path, r->line, r->name, msg);
}

/* conf_check_auth - the credentials of r fit together */
static void conf_check_auth(const struct conf *c, struct conf_relay *r)
{
	int sources = !!r->password + !!r->password_file +
	    !!r->password_command + !!r->password_env;
	bool oauth = r->oauth2_token_url || r->oauth2_client_id ||
	    r->oauth2_refresh_token_file;

	if (sources > 1)
		conf_relay_fail(c, r, "password, password_file, "
				"password_command and password_env exclude "
				"each other");
	if (oauth && (sources || !r->oauth2_token_url ||
		      !r->oauth2_client_id || !r->oauth2_refresh_token_file))
		conf_relay_fail(c, r, "oauth2 needs oauth2_token_url, "
				"oauth2_client_id and "
				"oauth2_refresh_token_file, and no password");
	if (r->auth == 0)
		r->auth = oauth ? AUTH_BEARER : r->user || sources ?
		    AUTH_PLAIN | AUTH_LOGIN : 0;
	if (oauth && (r->auth & ~AUTH_BEARER))
		conf_relay_fail(c, r, "oauth2 works with auth = XOAUTH2 or "
				"OAUTHBEARER only");
	if ((r->auth & AUTH_EXTERNAL) && !r->client_cert)
		conf_relay_fail(c, r, "auth = EXTERNAL needs client_cert");
	/* EXTERNAL sends no secret at all, and a bearer token is not a
	 * password: one mechanism family per relay, so it is always clear
	 * what the relay was sent */
	if ((r->auth & AUTH_EXTERNAL) && r->auth != AUTH_EXTERNAL)
		conf_relay_fail(c, r, "auth = EXTERNAL goes alone");
	if ((r->auth & AUTH_BEARER) && (r->auth & ~AUTH_BEARER))
		conf_relay_fail(c, r, "auth: XOAUTH2 and OAUTHBEARER take a "
				"token, not a password: do not mix them with "
				"PLAIN, LOGIN or CRAM-MD5");
	if (r->auth & ~AUTH_EXTERNAL) {
		if (!r->user)
			conf_relay_fail(c, r, "%s is set but no user",
					sources ? "a password" : "auth");
		if (!oauth && !sources)
			conf_relay_fail(c, r, "user is set but no password, "
					"password_file, password_command or "
					"password_env");
	} else if (sources) {
		conf_relay_fail(c, r, "auth = EXTERNAL takes no password");
	}
}

/* conf_pin_next - the next entry of a pin_sha256 list ("A;B, C", each
 * optionally "sha256//A"): its start, its length in *n, and *v moved
 * past it; NULL at the end */
const char *conf_pin_next(const char **v, size_t *n)
{
	const char *p = *v + strspn(*v, " \t,;");

	if ((*n = strcspn(p, " \t,;")) == 0)
		return NULL;
	*v = p + *n;
	if (*n > 8 && strncmp(p, "sha256//", 8) == 0) {
		p += 8;
		*n -= 8;
	}
	return p;
}

/* conf_check_pins - each entry is a base64 SHA-256 hash */
static int conf_check_pins(const char *v)
{
	const char *p;
	size_t n;

	while ((p = conf_pin_next(&v, &n)) != NULL)
		if (n != 44 || p[43] != '=' ||
		    strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "abcdefghijklmnopqrstuvwxyz0123456789+/") != 43)
			return -1;
	return 0;
}

/* conf_check_relay - rules that involve several keys of one relay */
static void conf_check_relay(const struct conf *c, struct conf_relay *r)
{
	if (r->host == NULL)
		conf_relay_fail(c, r, "needs host");
	conf_check_auth(c, r);
	if (r->client_key && !r->client_cert)
		conf_relay_fail(c, r, "client_key needs client_cert");
	if (r->tls == CONF_TLS_NONE && (!conf_host_is_loopback(r->host) ||
	    (r->address && !conf_host_is_loopback(r->address)) || r->proxy))
		conf_relay_fail(c, r, "tls = none is allowed only for a "
				"loopback host, not %s",
				r->address && !r->proxy ? r->address :
				r->proxy ? r->proxy : r->host);
	if (r->connect_timeout > 86400 || r->timeout > 86400 ||
	    r->data_timeout > 86400)
		conf_relay_fail(c, r, "timeouts are at most 1d");
	if (r->pin_sha256 && conf_check_pins(r->pin_sha256) < 0)
		conf_relay_fail(c, r, "pin_sha256: expected base64 SHA-256 "
				"hashes (44 characters ending in =), as "
				"sendmail --check-relays prints them");
	if (r->tls == CONF_TLS_NONE && r->auth)
		conf_relay_fail(c, r, "tls = none cannot authenticate: "
				"credentials are never sent in clear");
	if (r->port == 0)
		r->port = r->tls == CONF_TLS_IMPLICIT ? 465 :
		    r->tls == CONF_TLS_NONE ? 25 : 587;
}

/* conf_check_relays - check every relay; a [relay] without host is
 * no relay at all (mail stays queued), as it always was */
static void conf_check_relays(struct conf *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nrelays; i++) {
		struct conf_relay *r = &c->relays[i];

		if (r->host == NULL && strcmp(r->name, "relay") == 0) {
			conf_check_auth(c, r);
			conf_relay_free(r);
			continue;
		}
		conf_check_relay(c, r);
		c->relays[n++] = *r;
	}
	c->nrelays = n;
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

	c->queue.max_age = 5 * 86400;
	c->queue.retry_min = 60;
	c->queue.retry_max = 3600;
	c->path = conf_find(cli_path);
	if (c->path)
		conf_parse_file(c, c->path);
	conf_check_relays(c);
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
	char **strs[] = { &c->path, &c->mail.from, &c->mail.domain,
		&c->mail.bounce_to, &c->queue.dir };

	for (size_t i = 0; i < c->nrelays; i++)
		conf_relay_free(&c->relays[i]);
	free(c->relays);
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
	/* NOLINTNEXTLINE(cert-env33-c): the shell runs it, as documented */
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

/* conf_password_env - a variable of the environment outbox started in */
static char *conf_password_env(const char *name, char *err, size_t errlen)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		snprintf(err, errlen, "password_env: %s is not set", name);
		return NULL;
	}
	return xstrdup(v);
}

/* conf_password - the relay password now, or NULL with err set */
char *conf_password(const struct conf_relay *r, char *err, size_t errlen)
{
	if (r->password)
		return xstrdup(r->password);
	if (r->password_file)
		return conf_password_file(r->password_file, err, errlen);
	if (r->password_command)
		return conf_password_command(r->password_command, err, errlen);
	if (r->password_env)
		return conf_password_env(r->password_env, err, errlen);
	snprintf(err, errlen, "no password configured");
	return NULL;
}

/* conf_relay_serves - may r carry mail from this envelope sender; the
 * null sender (bounces) goes through any relay */
bool conf_relay_serves(const struct conf_relay *r, const char *sender)
{
	const char *v = r->senders;
	char pat[512];

	if (v == NULL || *sender == '\0')
		return true;
	while (*v) {
		size_t n;

		v += strspn(v, " \t,");
		if ((n = strcspn(v, " \t,")) == 0)
			break;
		if (n < sizeof(pat)) {
			memcpy(pat, v, n);
			pat[n] = '\0';
			if (fnmatch(pat, sender, FNM_CASEFOLD) == 0)
				return true;
		}
		v += n;
	}
	return false;
}

/* conf_relay_for - the first relay that may carry mail from sender */
const struct conf_relay *conf_relay_for(const struct conf *c,
					const char *sender)
{
	for (size_t i = 0; i < c->nrelays; i++)
		if (conf_relay_serves(&c->relays[i], sender))
			return &c->relays[i];
	return NULL;
}
