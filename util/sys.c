/*
 * NAME
 *	sys - facts about the calling user and this host
 */
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/sys.h"

static char *sys_login_name;
static char *sys_gecos;
static char *sys_home_dir;
static char *sys_fqdn_name;

/* sys_passwd - fill the user cache from the passwd entry of getuid() */
static void sys_passwd(void)
{
	struct passwd *pw;
	char num[32];

	if (sys_login_name)
		return;
	/* cppcheck-suppress getpwuidCalled ; only the main thread calls it */
	pw = getpwuid(getuid());
	if (pw == NULL) {
		snprintf(num, sizeof(num), "uid%u", (unsigned)getuid());
		sys_login_name = xstrdup(num);
		sys_gecos = xstrdup("");
		sys_home_dir = xstrdup("/");
		return;
	}
	sys_login_name = xstrdup(pw->pw_name);
	/* GECOS: "Full Name,room,phone,..." - the name is the first field */
	sys_gecos = xstrndup(pw->pw_gecos ? pw->pw_gecos : "",
			     strcspn(pw->pw_gecos ? pw->pw_gecos : "", ","));
	sys_home_dir = xstrdup(pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
}

/* sys_login - login name of the real uid */
const char *sys_login(void)
{
	sys_passwd();
	return sys_login_name;
}

/* sys_fullname - full name from GECOS, possibly "" */
const char *sys_fullname(void)
{
	sys_passwd();
	return sys_gecos;
}

/* sys_home - $HOME when set and absolute, else the passwd entry */
const char *sys_home(void)
{
	const char *home = getenv("HOME");

	if (home && home[0] == '/')
		return home;
	sys_passwd();
	return sys_home_dir;
}

/* sys_fqdn - this host's fully qualified name, best effort */
const char *sys_fqdn(void)
{
	char host[256];
	struct addrinfo hints, *res = NULL;

	if (sys_fqdn_name)
		return sys_fqdn_name;
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_flags = AI_CANONNAME;
		if (getaddrinfo(host, NULL, &hints, &res) == 0 && res &&
		    res->ai_canonname && strchr(res->ai_canonname, '.'))
			snprintf(host, sizeof(host), "%s", res->ai_canonname);
		if (res)
			freeaddrinfo(res);
	}
	sys_fqdn_name = xstrdup(host);
	return sys_fqdn_name;
}

/* sys_now - the queue's clock (see sys.h for the test hook) */
time_t sys_now(void)
{
	static long offset;
	static int looked;
	const char *v;

	if (!looked) {
		v = getenv("OUTBOX_TIME_OFFSET");
		offset = v ? strtol(v, NULL, 10) : 0;
		looked = 1;
	}
	return time(NULL) + offset;
}
