/*
 * NAME
 *	net - the TCP connection to a relay: direct, or through SOCKS5
 * SYNOPSIS
 *	#include "relay/net.h"
 *
 *	long long deadline = net_clock_ms() + 1000 * rc->connect_timeout;
 *	int fd = net_connect(rc, deadline, &peer, &fail, err, sizeof(err));
 * DESCRIPTION
 *	net_connect() resolves the relay (its address key, else its host)
 *	for the configured IP version, binds the source address if one is
 *	set, and tries each address in turn until one answers, all before
 *	the deadline. With a proxy it connects to the proxy instead and
 *	asks it for the relay (RFC 1928, no authentication): socks5://
 *	resolves the relay here, socks5h:// lets the proxy resolve it.
 *	Proxy variables in the environment are never consulted.
 *
 *	The socket it returns is non-blocking, with TCP_NODELAY (a command
 *	goes out whole, now) and keepalives on. net_wait() polls it against
 *	a deadline on the monotonic clock; net_quickack() acknowledges at
 *	once: a server that writes one reply in two segments would
 *	otherwise wait for our delayed ACK, ~40 ms per reply on Linux.
 * DIAGNOSTICS
 *	net_connect() returns -1 with a one-line reason in err, and fail
 *	says whether the name could not be resolved or nothing answered.
 */
#ifndef OUTBOX_NET_H
#define OUTBOX_NET_H

#include <stddef.h>

#include "conf/conf.h"

enum net_fail { NET_OK, NET_RESOLVE, NET_CONNECT };

struct net_peer {
	char address[64];	/* numeric, of the relay or of the proxy */
	long port;
};

int net_connect(const struct conf_relay *, long long deadline_ms,
		struct net_peer *, enum net_fail *, char *err, size_t len);
int net_wait(int fd, short events, long long deadline_ms);
long long net_clock_ms(void);
void net_quickack(int fd);

#endif
