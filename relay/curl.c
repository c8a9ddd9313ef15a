/*
 * NAME
 *	curl - libcurl, loaded only when outbox talks to a relay
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "relay/curl.h"

#define CURL_SONAME "libcurl.so.4"

/* curl_sym - one function of the loaded library, or NULL */
static void *curl_sym(void *lib, const char *name)
{
	return dlsym(lib, name);
}

/* curl_api - the functions, loading libcurl the first time */
const struct curl_api *curl_api(char *err, size_t len)
{
	static struct curl_api api;
	static int loaded;
	void *lib;

	if (loaded)
		return &api;
	if ((lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, len, "cannot load %s: %s", CURL_SONAME, dlerror());
		return NULL;
	}
	*(void **)&api.easy_init = curl_sym(lib, "curl_easy_init");
	*(void **)&api.easy_setopt = curl_sym(lib, "curl_easy_setopt");
	*(void **)&api.easy_perform = curl_sym(lib, "curl_easy_perform");
	*(void **)&api.easy_getinfo = curl_sym(lib, "curl_easy_getinfo");
	*(void **)&api.easy_send = curl_sym(lib, "curl_easy_send");
	*(void **)&api.easy_recv = curl_sym(lib, "curl_easy_recv");
	*(void **)&api.easy_cleanup = curl_sym(lib, "curl_easy_cleanup");
	*(void **)&api.easy_strerror = curl_sym(lib, "curl_easy_strerror");
	if (!api.easy_init || !api.easy_setopt || !api.easy_perform ||
	    !api.easy_getinfo || !api.easy_send || !api.easy_recv ||
	    !api.easy_cleanup || !api.easy_strerror) {
		snprintf(err, len, "%s lacks a function outbox needs",
			 CURL_SONAME);
		return NULL;
	}
	loaded = 1;
	return &api;
}
