/*
 * NAME
 *	check - sendmail --check-relays: can each relay take mail now
 * DESCRIPTION
 *	relay_check() connects to every configured relay in order, the way
 *	a delivery does (same code, same TLS and authentication rules), and
 *	prints what it saw: the address connected, the TLS version and
 *	cipher, the certificate's subject, issuer, expiry and pin, the EHLO
 *	capabilities and whether authentication succeeded. It sends no
 *	mail: after AUTH it says QUIT.
 * DIAGNOSTICS
 *	The exit status is that of the first relay that failed, by step:
 *	EX_CONFIG (78) no relay, or no password or token to send;
 *	EX_NOHOST (68) the name does not resolve; EX_UNAVAILABLE (69) no
 *	connection or no greeting; EX_PROTOCOL (76) STARTTLS, the TLS
 *	handshake, the certificate or the pin; EX_NOPERM (77)
 *	authentication refused or not offered. 0 when every relay is fine.
 */
#include <stdio.h>
#include <sysexits.h>

#include "relay/check.h"
#include "relay/relay.h"

/* check_exit - the sysexits code for the step that failed */
static int check_exit(enum relay_step step)
{
	switch (step) {
	case RELAY_STEP_NONE:
		return EX_OK;
	case RELAY_STEP_RESOLVE:
		return EX_NOHOST;
	case RELAY_STEP_CONNECT:
		return EX_UNAVAILABLE;
	case RELAY_STEP_TLS:
		return EX_PROTOCOL;
	case RELAY_STEP_AUTH:
		return EX_NOPERM;
	default:
		return EX_CONFIG;
	}
}

/* check_step - the step's name, for the result line */
static const char *check_step(enum relay_step step)
{
	static const char *names[] = {
		[RELAY_STEP_NONE] = "none", [RELAY_STEP_CONFIG] = "setup",
		[RELAY_STEP_SECRET] = "credentials",
		[RELAY_STEP_RESOLVE] = "resolve", [RELAY_STEP_CONNECT] =
		"connect", [RELAY_STEP_TLS] = "tls", [RELAY_STEP_AUTH] = "auth",
	};

	return names[step];
}

/* check_print - what was seen of one relay */
static void check_print(const struct conf_relay *rc,
			const struct relay_info *i)
{
	if (i->address[0])
		printf("  connected:    %s port %ld\n", i->address, i->port);
	if (i->tls_version[0])
		printf("  tls:          %s, %s\n", i->tls_version, i->cipher);
	else if (i->address[0] && rc->tls == CONF_TLS_NONE)
		printf("  tls:          none (loopback relay)\n");
	if (i->subject[0])
		printf("  certificate:  %s\n  issuer:       %s\n"
		       "  expires:      %s\n  pin_sha256:   %s\n", i->subject,
		       i->issuer, i->expires, i->pin);
	if (i->caps[0])
		printf("  capabilities: %s\n", i->caps);
	if (i->address[0] == '\0')
		return;		/* never got as far as AUTH */
	if (rc->auth == 0)
		printf("  auth:         none configured\n");
	else if (i->authenticated)
		printf("  auth:         %s as %s: accepted\n", i->mech[0] ?
		       i->mech : "?", rc->user ? rc->user : "(certificate)");
	else if (i->mech[0])
		printf("  auth:         %s as %s: refused\n", i->mech,
		       rc->user ? rc->user : "(certificate)");
	else
		printf("  auth:         not attempted\n");
}

/* relay_check - probe every relay; the first failure's exit status */
int relay_check(const struct conf *c, int dirfd)
{
	int ex = EX_OK;

	if (c->nrelays == 0) {
		printf("no relay configured in %s\n", c->path ? c->path :
		       "(no configuration file)");
		return EX_CONFIG;
	}
	for (size_t n = 0; n < c->nrelays; n++) {
		const struct conf_relay *rc = &c->relays[n];
		struct relay_info info;
		char err[1024];
		int rv;

		printf("%s[%s] %s port %u (%s)\n", n ? "\n" : "", rc->name,
		       rc->host, rc->port, rc->tls == CONF_TLS_IMPLICIT ?
		       "tls" : rc->tls == CONF_TLS_NONE ? "no tls" :
		       "starttls");
		fflush(stdout);
		rv = relay_probe(rc, dirfd, &info, err, sizeof(err));
		check_print(rc, &info);
		if (rv == 0) {
			printf("  result:       ok\n");
			continue;
		}
		printf("  result:       failed at %s: %s\n",
		       check_step(info.step), err);
		if (ex == EX_OK)
			ex = check_exit(info.step);
	}
	return ex;
}
