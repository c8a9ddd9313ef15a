/*
 * NAME
 *	curl - libcurl, loaded only when outbox talks to a relay
 */
#include <dlfcn.h>
#include <stddef.h>
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
	static const struct {
		const char *name;
		size_t off;
	} fns[] = {
#define F(field, sym) { sym, offsetof(struct curl_api, field) }
		F(easy_init, "curl_easy_init"),
		F(easy_setopt, "curl_easy_setopt"),
		F(easy_perform, "curl_easy_perform"),
		F(easy_getinfo, "curl_easy_getinfo"),
		F(easy_send, "curl_easy_send"),
		F(easy_recv, "curl_easy_recv"),
		F(easy_cleanup, "curl_easy_cleanup"),
		F(easy_strerror, "curl_easy_strerror"),
		F(easy_escape, "curl_easy_escape"),
		F(free, "curl_free"),
		F(slist_append, "curl_slist_append"),
		F(slist_free_all, "curl_slist_free_all"),
#undef F
	};
	static struct curl_api api;
	static int loaded;
	void *lib;

	if (loaded)
		return &api;
	if ((lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, len, "cannot load %s: %s", CURL_SONAME,
			 dlerror());
		return NULL;
	}
	for (size_t i = 0; i < sizeof(fns) / sizeof(*fns); i++) {
		void *f = curl_sym(lib, fns[i].name);

		if (f == NULL) {
			snprintf(err, len, "%s lacks %s, which outbox needs",
				 CURL_SONAME, fns[i].name);
			return NULL;
		}
		memcpy((char *)&api + fns[i].off, &f, sizeof(f));
	}
	loaded = 1;
	return &api;
}
