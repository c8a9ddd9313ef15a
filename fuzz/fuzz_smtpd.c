/*
 * NAME
 *	fuzz_smtpd - the sendmail -bs SMTP dialogue (message/smtpd.c)
 * FEEDS
 *	The input is what an SMTP client (Symfony Mailer, Laravel, a
 *	hostile local user) writes to sendmail -bs: it becomes standard
 *	input (a memfd) of one whole smtpd_run() session, standard output
 *	another memfd. The configuration has [mail] domain, from, max_size
 *	64 KiB, aliases and a scratch [queue] dir, no relay: accepted
 *	messages are queued and stay queued. Everything queued is removed
 *	after each input.
 * ASSERTS
 *	- the session ends normally (no crash, no exit, no leak);
 *	- every reply line is "NNN text" or "NNN-text" with NNN from 200 to
 *	  599, ends in CRLF and holds no other control character; the lines
 *	  of one multi-line reply share their code; the first reply is 220;
 *	- a "250 2.0.0 Ok: queued as ID" is sent only for a message that is
 *	  in the spool (q/ID exists and spool_read() reads it), and every
 *	  message in the spool had its 250: what was acknowledged is on
 *	  disk, and nothing else is.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "fuzz/common.h"
#include "message/smtpd.h"
#include "queue/spool.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strlist.h"
#include "util/sys.h"

static struct conf_alias fuzz_aliases[] = {
	{ "root", "ops@example.com" },
	{ "postmaster", "root" },
	{ "loop", "loop2" },
	{ "loop2", "loop" },
};

static struct conf conf;
static char *qdir, *tmpdir;
static int in_fd, out_fd, saved_in, saved_out;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *base = fuzz_tmpdir("smtpd");
	struct buf b = BUF_INIT(4096);
	struct spool s;
	int fd;

	(void)argc;
	(void)argv;
	sys_fqdn();
	sys_login();
	sys_fullname();
	buf_printf(&b, "%s/spool", base);
	conf.queue.dir = buf_steal(&b);
	conf.mail.from = "app@example.com";
	conf.mail.domain = "example.com";
	conf.mail.max_size = 64 * 1024;
	conf.aliases = fuzz_aliases;
	conf.naliases = sizeof(fuzz_aliases) / sizeof(*fuzz_aliases);
	if (spool_open(&conf, &s, SPOOL_CREATE) < 0)
		abort();
	/* the "no relay configured" warning is given once per spool: give
	 * it now, so that every input takes the same path */
	fd = openat(s.dirfd, "told-no-relay", O_WRONLY | O_CREAT | O_CLOEXEC,
		    0600);
	if (fd >= 0)
		close(fd);
	spool_close(&s);
	buf_printf(&b, "%s/q", conf.queue.dir);
	qdir = buf_steal(&b);
	buf_printf(&b, "%s/tmp", conf.queue.dir);
	tmpdir = buf_steal(&b);
	in_fd = fuzz_memfd("", 0);
	out_fd = fuzz_memfd("", 0);
	saved_in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 10);
	saved_out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 10);
	if (saved_in < 0 || saved_out < 0)
		abort();
	return 0;
}

/* check_line - one reply line (without CRLF); its code */
static int check_line(const char *l, size_t len, bool *last)
{
	FUZZ_ASSERT(len >= 3);
	FUZZ_ASSERT(l[0] >= '2' && l[0] <= '5');
	FUZZ_ASSERT(l[1] >= '0' && l[1] <= '9');
	FUZZ_ASSERT(l[2] >= '0' && l[2] <= '9');
	FUZZ_ASSERT(len == 3 || l[3] == ' ' || l[3] == '-');
	for (size_t i = 0; i < len; i++)
		FUZZ_ASSERT((unsigned char)l[i] >= 0x20 && l[i] != 0x7f);
	*last = len == 3 || l[3] == ' ';
	return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

/* check_replies - the dialogue's output; the ids it said were queued */
static void check_replies(const char *out, size_t n, struct strlist *ids)
{
	static const char queued[] = "250 2.0.0 Ok: queued as ";
	size_t pos = 0, replies = 0;
	int code = 0;

	while (pos < n) {
		const char *l = out + pos;
		const char *crlf = memmem(l, n - pos, "\r\n", 2);
		size_t len;
		bool last;
		int c;

		FUZZ_ASSERT(crlf != NULL);
		len = (size_t)(crlf - l);
		c = check_line(l, len, &last);
		FUZZ_ASSERT(code == 0 || c == code);
		code = last ? 0 : c;
		if (replies++ == 0)
			FUZZ_ASSERT(c == 220);
		if (len > sizeof(queued) - 1 &&
		    memcmp(l, queued, sizeof(queued) - 1) == 0)
			strlist_take(ids, xstrndup(l + sizeof(queued) - 1,
						   len - (sizeof(queued) - 1)));
		pos += len + 2;
	}
	FUZZ_ASSERT(replies > 0);
}

/* check_spool - exactly the acknowledged messages are queued */
static void check_spool(const struct strlist *ids)
{
	struct spool s;
	struct strlist have = STRLIST_INIT;
	char err[256];

	FUZZ_ASSERT(spool_open(&conf, &s, SPOOL_EXISTING) == 0);
	FUZZ_ASSERT(spool_list(&s, &have) == 0);
	FUZZ_ASSERT(have.n == ids->n);
	for (size_t i = 0; i < ids->n; i++) {
		struct spool_msg m;

		FUZZ_ASSERT(strlist_has_nocase(&have, ids->v[i]));
		FUZZ_ASSERT(spool_read(&s, ids->v[i], &m, err,
				       sizeof(err)) == 0);
		FUZZ_ASSERT(m.nrcpts > 0);
		spool_msg_free(&m);
	}
	strlist_free(&have);
	spool_close(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strlist ids = STRLIST_INIT;
	size_t n;
	char *out;
	int rc;

	fuzz_memfd_reset(in_fd, data, size);
	fuzz_memfd_reset(out_fd, "", 0);
	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
		abort();
	rc = smtpd_run(&conf);
	dup2(saved_in, STDIN_FILENO);
	dup2(saved_out, STDOUT_FILENO);
	log_set_die_hook(NULL);
	FUZZ_ASSERT(rc == 0);
	out = fuzz_memfd_read(out_fd, &n);
	check_replies(out, n, &ids);
	check_spool(&ids);
	free(out);
	strlist_free(&ids);
	fuzz_empty_dir(qdir);
	fuzz_empty_dir(tmpdir);
	return 0;
}
