/*
 * NAME
 *	curl - libcurl, loaded only for an OAuth2 token request
 * DESCRIPTION
 *	libcurl and the thirty-odd libraries it pulls in cost several
 *	milliseconds and megabytes at start-up, so outbox does not link
 *	it: curl_api() loads libcurl.so.4 with dlopen the first time an
 *	OAuth2 access token must be fetched over HTTPS (relay/oauth2.c)
 *	and hands out the few functions that needs. SMTP itself never
 *	uses it (relay/relay.h). The headers are libcurl's own, so option
 *	names and constants come from the installed curl.h.
 * DIAGNOSTICS
 *	curl_api() returns NULL with err filled in when libcurl cannot be
 *	loaded: the delivery attempt then fails like an unreachable relay
 *	and the mail stays queued.
 */
#ifndef OUTBOX_CURL_H
#define OUTBOX_CURL_H

#include <curl/curl.h>
#include <stddef.h>

struct curl_api {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	CURLcode (*easy_send)(CURL *, const void *, size_t, size_t *);
	CURLcode (*easy_recv)(CURL *, void *, size_t, size_t *);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	char *(*easy_escape)(CURL *, const char *, int);
	void (*free)(void *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
};

const struct curl_api *curl_api(char *err, size_t len);

#endif
