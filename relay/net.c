/*
 * NAME
 *	net - the TCP connection to a relay: direct, or through SOCKS5
 * DESCRIPTION
 *	See net.h. Every wait is bounded by the caller's deadline, so a
 *	relay (or proxy) that accepts and then says nothing cannot hold a
 *	submission longer than connect_timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay/net.h"

#define NET_NAME_MAX	255	/* a SOCKS5 domain name: one length byte */

/* net_clock_ms - milliseconds on the monotonic clock */
long long net_clock_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* net_wait - 0 once fd is ready for events, -1 at the deadline */
int net_wait(int fd, short events, long long deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left;
	int n;

	do {
		if ((left = deadline_ms - net_clock_ms()) <= 0)
			return -1;
		n = poll(&p, 1, left > 86400000 ? 86400000 : (int)left);
	} while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : -1;
}

/* net_quickack - acknowledge the next segments at once */
void net_quickack(int fd)
{
	int on = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

/* net_strip - a host without the brackets of "[::1]" */
static void net_strip(const char *host, char *out, size_t len)
{
	size_t n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		snprintf(out, len, "%.*s", (int)(n - 2), host + 1);
	else
		snprintf(out, len, "%s", host);
}

/* net_resolve - the addresses of host for the configured IP version */
static struct addrinfo *net_resolve(const char *host, unsigned port,
				    int ip_version, int flags, char *err,
				    size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | flags };
	struct addrinfo *res = NULL;
	char name[NET_NAME_MAX + 3], serv[8];
	int rc;

	hints.ai_family = ip_version == 4 ? AF_INET : ip_version == 6 ?
	    AF_INET6 : AF_UNSPEC;
	net_strip(host, name, sizeof(name));
	snprintf(serv, sizeof(serv), "%u", port);
	if ((rc = getaddrinfo(name, serv, &hints, &res)) != 0) {
		snprintf(err, len, "cannot resolve %s%s: %s", name,
			 ip_version == 4 ? " (IPv4)" : ip_version == 6 ?
			 " (IPv6)" : "", rc == EAI_SYSTEM ? strerror(errno) :
			 gai_strerror(rc));
		return NULL;
	}
	return res;
}

/* net_bind - send from the configured source address */
static int net_bind(int fd, const char *source, int family, char *err,
		    size_t len)
{
	struct addrinfo hints = { .ai_family = family,
		.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	char name[NET_NAME_MAX + 3];
	int rc;

	net_strip(source, name, sizeof(name));
	if ((rc = getaddrinfo(name, NULL, &hints, &res)) != 0) {
		snprintf(err, len, "source %s: %s", source, gai_strerror(rc));
		return -1;
	}
	rc = bind(fd, res->ai_addr, res->ai_addrlen);
	if (rc < 0)
		snprintf(err, len, "source %s: %s", source, strerror(errno));
	freeaddrinfo(res);
	return rc;
}

/* net_options - non-blocking, no Nagle delay, keepalives */
static void net_options(int fd)
{
	int on = 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	net_quickack(fd);
}

/* net_try - one address: a connected socket, or -1 with errno's text */
static int net_try(const struct addrinfo *ai, const char *source,
		   long long deadline_ms, char *err, size_t len)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			ai->ai_protocol);
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fd < 0) {
		snprintf(err, len, "%s", strerror(errno));
		return -1;
	}
	net_options(fd);
	if (source && net_bind(fd, source, ai->ai_family, err, len) < 0)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		snprintf(err, len, "%s", strerror(errno));
		goto fail;
	}
	if (net_wait(fd, POLLOUT, deadline_ms) < 0) {
		snprintf(err, len, "timed out");
		goto fail;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr == 0)
		return fd;
	snprintf(err, len, "%s", strerror(soerr));
fail:
	close(fd);
	return -1;
}

/* net_numeric - the numeric form of a socket address */
static void net_numeric(const struct sockaddr *sa, socklen_t sl,
			struct net_peer *peer)
{
	char serv[8] = "0";

	if (getnameinfo(sa, sl, peer->address, sizeof(peer->address), serv,
			sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		peer->address[0] = '\0';
	peer->port = strtol(serv, NULL, 10);
}

/* net_tcp - the first address of host that answers */
static int net_tcp(const char *host, unsigned port, const struct conf_relay *rc,
		   long long deadline_ms, struct net_peer *peer,
		   enum net_fail *fail, char *err, size_t len)
{
	struct addrinfo *res, *ai;
	char why[256] = "no address";
	int fd = -1;

	*fail = NET_RESOLVE;
	if ((res = net_resolve(host, port, rc->ip_version, 0, err, len)) ==
	    NULL)
		return -1;
	*fail = NET_CONNECT;
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		/* an address that does not answer gets half of what is
		 * left, so the next one is tried in time */
		long long left = deadline_ms - net_clock_ms();
		long long mine = ai->ai_next && left > 0 ?
		    deadline_ms - left / 2 : deadline_ms;

		fd = net_try(ai, rc->source, mine, why, sizeof(why));
		if (fd >= 0)
			net_numeric(ai->ai_addr, ai->ai_addrlen, peer);
	}
	if (fd < 0)
		snprintf(err, len, "cannot connect to %s port %u: %s", host,
			 port, why);
	freeaddrinfo(res);
	return fd;
}

/* net_io - move exactly n bytes (send or receive) before the deadline */
static int net_io(int fd, bool out, void *p, size_t n, long long deadline_ms)
{
	char *c = p;

	while (n) {
		ssize_t k = out ? send(fd, c, n, MSG_NOSIGNAL) :
		    recv(fd, c, n, 0);

		if (k > 0) {
			c += k;
			n -= (size_t)k;
			continue;
		}
		if (k == 0 || (errno != EAGAIN && errno != EINTR))
			return -1;
		if (net_wait(fd, out ? POLLOUT : POLLIN, deadline_ms) < 0)
			return -1;
	}
	return 0;
}

/* socks_target - the CONNECT request's address part for the relay */
static int socks_target(const struct conf_relay *rc, bool remote_dns,
			unsigned char *req, size_t *n, char *err, size_t len)
{
	const char *host = rc->address ? rc->address : rc->host;
	struct addrinfo *res;
	char name[NET_NAME_MAX + 3];

	net_strip(host, name, sizeof(name));
	if (remote_dns && strchr(name, ':') == NULL) {
		size_t k = strlen(name);

		if (k > NET_NAME_MAX) {
			snprintf(err, len, "%.40s...: too long a name for "
				 "SOCKS5", name);
			return -1;
		}
		req[(*n)++] = 3;
		req[(*n)++] = (unsigned char)k;
		for (size_t i = 0; i < k; i++)	/* no terminator on the wire */
			req[(*n)++] = (unsigned char)name[i];
		return 0;
	}
	if ((res = net_resolve(name, rc->port, rc->ip_version, 0, err, len)) ==
	    NULL)
		return -1;
	if (res->ai_family == AF_INET) {
		const struct sockaddr_in *a = (void *)res->ai_addr;

		req[(*n)++] = 1;
		memcpy(req + *n, &a->sin_addr, 4);
		*n += 4;
	} else {
		const struct sockaddr_in6 *a = (void *)res->ai_addr;

		req[(*n)++] = 4;
		memcpy(req + *n, &a->sin6_addr, 16);
		*n += 16;
	}
	freeaddrinfo(res);
	return 0;
}

/* socks_reply - the proxy's answer to CONNECT, read to its end */
static int socks_reply(int fd, long long deadline_ms, char *err, size_t len)
{
	static const char *const why[] = { "succeeded",
		"general failure", "not allowed by its rules",
		"network unreachable", "host unreachable",
		"connection refused", "TTL expired",
		"command not supported", "address type not supported" };
	unsigned char r[4 + 1 + NET_NAME_MAX + 2];
	size_t rest;

	if (net_io(fd, false, r, 4, deadline_ms) < 0 || r[0] != 5) {
		snprintf(err, len, "the SOCKS5 proxy did not answer CONNECT");
		return -1;
	}
	if (r[1] != 0) {
		snprintf(err, len, "the SOCKS5 proxy could not connect: %s",
			 r[1] < sizeof(why) / sizeof(why[0]) ? why[r[1]] :
			 "unknown error");
		return -1;
	}
	rest = r[3] == 1 ? 4 + 2 : r[3] == 4 ? 16 + 2 : 0;
	if (r[3] == 3 && net_io(fd, false, r + 4, 1, deadline_ms) == 0)
		rest = (size_t)r[4] + 2;
	if (rest == 0 || net_io(fd, false, r + 5, rest, deadline_ms) < 0) {
		snprintf(err, len, "the SOCKS5 proxy sent a bad reply");
		return -1;
	}
	return 0;
}

/* socks_connect - ask the proxy on fd for the relay (RFC 1928) */
static int socks_connect(int fd, const struct conf_relay *rc, bool remote_dns,
			 long long deadline_ms, char *err, size_t len)
{
	unsigned char hello[3] = { 5, 1, 0 }, method[2];
	unsigned char req[4 + 1 + NET_NAME_MAX + 2] = { 5, 1, 0 };
	size_t n = 3;

	if (net_io(fd, true, hello, sizeof(hello), deadline_ms) < 0 ||
	    net_io(fd, false, method, sizeof(method), deadline_ms) < 0 ||
	    method[0] != 5 || method[1] != 0) {
		snprintf(err, len, "the SOCKS5 proxy refused a connection "
			 "without authentication");
		return -1;
	}
	if (socks_target(rc, remote_dns, req, &n, err, len) < 0)
		return -1;
	req[n++] = (unsigned char)(rc->port >> 8);
	req[n++] = (unsigned char)(rc->port & 0xff);
	if (net_io(fd, true, req, n, deadline_ms) < 0) {
		snprintf(err, len, "the SOCKS5 proxy closed the connection");
		return -1;
	}
	return socks_reply(fd, deadline_ms, err, len);
}

/* net_proxied - through the SOCKS5 proxy "socks5[h]://host:port" */
static int net_proxied(const struct conf_relay *rc, long long deadline_ms,
		       struct net_peer *peer, enum net_fail *fail, char *err,
		       size_t len)
{
	bool remote_dns = strncmp(rc->proxy, "socks5h://", 10) == 0;
	const char *hp = rc->proxy + (remote_dns ? 10 : 9);
	const char *colon = strrchr(hp, ':');
	char host[NET_NAME_MAX + 3];
	int fd;

	snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
	fd = net_tcp(host, (unsigned)strtoul(colon + 1, NULL, 10), rc,
		     deadline_ms, peer, fail, err, len);
	if (fd < 0)
		return -1;
	if (socks_connect(fd, rc, remote_dns, deadline_ms, err, len) < 0) {
		*fail = NET_CONNECT;
		close(fd);
		return -1;
	}
	return fd;
}

/* net_connect - a connected, non-blocking socket to the relay */
int net_connect(const struct conf_relay *rc, long long deadline_ms,
		struct net_peer *peer, enum net_fail *fail, char *err,
		size_t len)
{
	memset(peer, 0, sizeof(*peer));
	*fail = NET_OK;
	if (rc->proxy)
		return net_proxied(rc, deadline_ms, peer, fail, err, len);
	return net_tcp(rc->address ? rc->address : rc->host, rc->port, rc,
		       deadline_ms, peer, fail, err, len);
}
