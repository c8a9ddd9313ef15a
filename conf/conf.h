/*
 * NAME
 *	conf - the configuration file, loaded once and read-only after
 * SYNOPSIS
 *	#include "conf/conf.h"
 *
 *	const struct conf *conf_load(const char *cli_path);
 * DESCRIPTION
 *	conf_load() finds the file (first found wins: -C FILE,
 *	$OUTBOX_CONFIG, ${XDG_CONFIG_HOME:-$HOME/.config}/outbox/outbox.conf,
 *	/etc/outbox.conf), parses it strictly with libinih and returns a
 *	configuration that nobody changes afterwards. No file at all is a
 *	valid configuration without a relay: mail is queued and kept.
 *
 *	conf_password() fetches the relay password from whichever source
 *	is configured, at the moment it is needed; the caller wipes and
 *	frees it.
 * DIAGNOSTICS
 *	Every error is "file:line: what is wrong" and ends the program
 *	with EX_CONFIG (78), except conf_password(), which reports through
 *	its err argument so that a delivery attempt can defer the mail.
 */
#ifndef OUTBOX_CONF_H
#define OUTBOX_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum conf_tls {
	CONF_TLS_STARTTLS,	/* plain connect, STARTTLS required */
	CONF_TLS_IMPLICIT,	/* TLS from the first byte (port 465) */
	CONF_TLS_NONE,		/* loopback relays only */
};

enum conf_rewrite {
	REWRITE_LOCAL,		/* only bare local senders (root, cron) */
	REWRITE_NEVER,
	REWRITE_ALWAYS,		/* every sender; Reply-To gets the original */
};

struct conf_alias {
	char *name;		/* local name, lower case */
	char *addrs;		/* comma-separated address list */
};

/* one DKIM key: [dkim], or [dkim:label] for more */
struct conf_dkim {
	char *label;		/* "dkim" or "dkim:label" */
	unsigned line;		/* where the section starts, for messages */
	char *domain;		/* d= */
	char *selector;		/* s= */
	char *key_file;		/* PEM (RSA or Ed25519) or a raw Ed25519 seed */
	bool simple_header;	/* c=simple/...; default relaxed */
	bool simple_body;	/* c=.../simple; default relaxed */
	char *headers;		/* h= list, colon-separated; NULL: default */
	char *sender_domains;	/* From domains it signs; NULL: domain */
};

#define CONF_COUNT_MAX	64	/* largest [relay] connections */

/* SASL mechanisms, for [relay] auth */
enum {
	AUTH_PLAIN = 1 << 0,
	AUTH_LOGIN = 1 << 1,
	AUTH_CRAM_MD5 = 1 << 2,
	AUTH_XOAUTH2 = 1 << 3,
	AUTH_OAUTHBEARER = 1 << 4,
	AUTH_EXTERNAL = 1 << 5,
	AUTH_BEARER = AUTH_XOAUTH2 | AUTH_OAUTHBEARER,
};

/* one relay: [relay], or [relay:name] for more, tried in file order */
struct conf_relay {
	char *name;		/* "relay" or "relay:name" */
	unsigned line;		/* where the section starts, for messages */
	char *host;		/* name used for SNI and the certificate */
	char *address;		/* connect here instead of resolving host */
	unsigned port;		/* 0 until defaulted from tls */
	enum conf_tls tls;
	char *ca_file;		/* NULL: system trust store */
	char *ca_path;		/* a hashed directory of CA certificates */
	char *pin_sha256;	/* base64 SPKI hashes, ';' separated */
	char *client_cert;	/* PEM certificate for TLS client auth */
	char *client_key;	/* its key; NULL: in client_cert */
	int tls_min;		/* 12 or 13 */
	char *user;		/* NULL: no AUTH (unless EXTERNAL) */
	char *password;		/* at most one of the sources */
	char *password_file;
	char *password_command;
	char *password_env;
	unsigned auth;		/* AUTH_* allowed; 0 until defaulted */
	char *oauth2_token_url;	/* built-in OAuth2 token refresh */
	char *oauth2_client_id;
	char *oauth2_client_secret;
	char *oauth2_refresh_token_file;
	char *oauth2_scope;
	char *oauth2_ca_file;
	char *helo;		/* EHLO name; NULL: the host's FQDN */
	char *senders;		/* envelope sender patterns; NULL: any */
	int ip_version;		/* 0 any, 4 or 6 */
	char *source;		/* local address to send from */
	char *proxy;		/* socks5[h]://host:port; NULL: none */
	long connections;	/* parallel connections for a flush */
	double max_rate;	/* messages per second; 0: no limit */
	long connect_timeout;	/* seconds: TCP, TLS and AUTH together */
	long timeout;		/* seconds per reply */
	long data_timeout;	/* seconds for the reply after the dot */
};

struct conf {
	char *path;		/* the file read, NULL if none was found */
	struct conf_relay *relays;	/* in order of preference */
	size_t nrelays;		/* 0: no relay, mail stays queued */
	struct {
		char *from;	/* default envelope sender and From: */
		char *domain;	/* qualifies bare names; NULL: FQDN */
		enum conf_rewrite rewrite_from;	/* needs from */
		long max_size;	/* bytes; 0: no limit */
		char *bounce_to;	/* bounces of local senders go here */
	} mail;
	struct conf_alias *aliases;
	size_t naliases;
	struct conf_dkim *dkim;
	size_t ndkim;
	struct {
		char *dir;	/* NULL: the per-user spool */
		long max_age;	/* seconds */
		long retry_min;	/* first backoff, seconds */
		long retry_max;	/* backoff cap, seconds */
	} queue;
};

const struct conf *conf_load(const char *cli_path);
void conf_free(const struct conf *);
const char *conf_domain(const struct conf *);
const char *conf_alias(const struct conf *, const char *name);
char *conf_password(const struct conf_relay *, char *err, size_t errlen);
const struct conf_relay *conf_relay_for(const struct conf *,
					const char *sender);
bool conf_relay_serves(const struct conf_relay *, const char *sender);
const char *conf_auth_name(unsigned mech);
bool conf_host_is_loopback(const char *host);
const char *conf_pin_next(const char **v, size_t *n);
FILE *conf_open_secret(const char *what, const char *path, char *err,
		       size_t errlen);

#endif
