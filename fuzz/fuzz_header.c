/*
 * NAME
 *	fuzz_header - a message submitted into a spool (message/submit.c,
 *	message/header.c, message/qp.c, message/input.c)
 * FEEDS
 *	The input is a message as a caller pipes it to sendmail (any line
 *	endings, any bytes). It is submitted three times, as submit() reads
 *	it from standard input (here a memfd) into a scratch spool:
 *	  -t      sendmail -t: recipients from To/Cc/Bcc (or Resent-*), a
 *	          lone "." ends the input, [mail] rewrite_from = local;
 *	  -i      sendmail -i www-data root: the sender is a local name,
 *	          dots are data, root is an alias;
 *	  -bs     the DATA of an SMTP session: dot-unstuffing, the final
 *	          dot required, rewrite_from = always, max_size 32 KiB.
 *	That runs the header block parser (line reading and unfolding,
 *	headers_add/fold/find/remove, the From rewriting and Reply-To, -t
 *	extraction), the body state machine and quoted-printable
 *	re-encoding of long lines.
 * ASSERTS
 *	- submit() either queues the message and can read it back (0) or
 *	  refuses it with a sysexits code, an SMTP code and a reason (-1);
 *	  never 1 (queued but unreadable), never a crash or exit;
 *	- what is queued is CRLF text: no bare CR or LF, no NUL, no line
 *	  over 998 octets; a header block of valid fields with From, Date
 *	  and Message-ID and without Bcc; an envelope that passes the
 *	  envelope check;
 *	- the queued body is exactly the input body with CRLF line ends
 *	  and the dot rules of the mode applied (an independent reading of
 *	  the input); when a line was over 998 octets, the body is
 *	  quoted-printable with lines of at most 76 characters, and
 *	  decoding it gives that same body back;
 *	- nothing is left in the spool afterwards (each input is removed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/conf.h"
#include "fuzz/common.h"
#include "message/addr.h"
#include "message/header.h"
#include "message/input.h"
#include "message/submit.h"
#include "queue/spool.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"

#define LINE_LIMIT 998

enum mode { MODE_T, MODE_I, MODE_BS };

static struct conf_alias fuzz_aliases[] = {
	{ "root", "ops@example.com" },
	{ "postmaster", "root" },
};

static struct conf conf_local, conf_always;
static struct spool spool;
static char *qdir, *tmpdir;
static struct input in;
static int memfd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *base = fuzz_tmpdir("header");
	struct buf b = BUF_INIT(4096);

	(void)argc;
	(void)argv;
	log_set_stderr(false);
	sys_fqdn();
	sys_login();
	sys_fullname();
	buf_printf(&b, "%s/spool", base);
	conf_local.queue.dir = buf_steal(&b);
	conf_local.mail.from = "app@example.com";
	conf_local.mail.domain = "example.com";
	conf_local.mail.rewrite_from = REWRITE_LOCAL;
	conf_local.aliases = fuzz_aliases;
	conf_local.naliases = sizeof(fuzz_aliases) / sizeof(*fuzz_aliases);
	conf_always = conf_local;
	conf_always.mail.rewrite_from = REWRITE_ALWAYS;
	conf_always.mail.max_size = 32 * 1024;
	if (spool_open(&conf_local, &spool, SPOOL_CREATE) < 0)
		abort();
	buf_printf(&b, "%s/q", conf_local.queue.dir);
	qdir = buf_steal(&b);
	buf_printf(&b, "%s/tmp", conf_local.queue.dir);
	tmpdir = buf_steal(&b);
	memfd = fuzz_memfd("", 0);
	return 0;
}

/* ref_line - the line at *pos (ending in LF, CR LF or a lone CR, as
 * input_line reads it): its length, and *pos moved past its end; false
 * at the end of the input */
static bool ref_line(const char *p, size_t n, size_t *pos, size_t *len)
{
	size_t i = *pos;

	if (i >= n)
		return false;
	while (i < n && p[i] != '\n' && p[i] != '\r')
		i++;
	*len = i - *pos;
	if (i < n && p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
		i++;
	*pos = i < n ? i + 1 : i;
	return true;
}

/* ref_body - the body submit() should queue, read independently: the
 * lines after the header block, each with CRLF; *longest its longest
 * line */
static void ref_body(const char *p, size_t n, enum mode mode, struct buf *out,
		     size_t *longest)
{
	bool smtp = mode == MODE_BS, dots = mode != MODE_I;
	bool head = true, have_header = false;
	size_t pos = 0, len, lineno = 0;

	*longest = 0;
	while (pos < n) {
		size_t start = pos;
		const char *l = p + start;

		ref_line(p, n, &pos, &len);
		lineno++;
		if (dots && len >= 1 && l[0] == '.') {
			if (len == 1)
				return;		/* the end of the input */
			if (smtp) {
				l++;
				len--;
			}
		}
		if (head) {
			if (lineno == 1 && !smtp && len >= 5 &&
			    memcmp(l, "From ", 5) == 0)
				continue;
			if (len == 0) {
				head = false;
				continue;
			}
			if ((l[0] == ' ' || l[0] == '\t') && have_header)
				continue;
			if (header_name_len(l, len) != 0) {
				have_header = true;
				continue;
			}
			head = false;	/* not a field: the body starts */
		}
		buf_append(out, l, len);
		buf_puts(out, "\r\n");
		if (len > *longest)
			*longest = len;
	}
}

/* hex_value - an upper-case hex digit's value, -1 if it is none */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* qp_decode - undo quoted-printable (soft breaks, =XX) */
static void qp_decode(const char *p, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		int h1, h2;

		if (p[i] != '=') {
			buf_putc(out, p[i]);
			continue;
		}
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 2;
			continue;
		}
		FUZZ_ASSERT(i + 2 < n);
		h1 = hex_value(p[i + 1]);
		h2 = hex_value(p[i + 2]);
		FUZZ_ASSERT(h1 >= 0 && h2 >= 0);
		buf_putc(out, (char)(h1 << 4 | h2));
		i += 2;
	}
}

/* check_crlf_text - CRLF lines, no bare CR or LF, no NUL, none longer
 * than max; the number of lines */
static void check_crlf_text(const char *p, size_t n, size_t max)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(p[i] != '\0');
		if (p[i] == '\r') {
			FUZZ_ASSERT(i + 1 < n && p[i + 1] == '\n');
			FUZZ_ASSERT(col <= max);
			col = 0;
			i++;
			continue;
		}
		FUZZ_ASSERT(p[i] != '\n');
		col++;
	}
	FUZZ_ASSERT(col == 0);	/* ends with CRLF */
}

/* check_headers - valid fields; From, Date, Message-ID; no Bcc */
static void check_headers(const char *p, size_t n)
{
	bool from = false, date = false, msgid = false;
	size_t pos = 0;

	while (pos < n) {
		const char *l = p + pos, *e = memmem(l, n - pos, "\r\n", 2);
		size_t len = (size_t)(e - l), name;

		FUZZ_ASSERT(e != NULL);
		pos += len + 2;
		if (l[0] == ' ' || l[0] == '\t') {
			FUZZ_ASSERT(l != p);	/* a fold follows a field */
			continue;
		}
		name = header_name_len(l, len);
		FUZZ_ASSERT(name > 0);
		FUZZ_ASSERT(!(name == 3 && strncasecmp(l, "Bcc", 3) == 0));
		from |= name == 4 && strncasecmp(l, "From", 4) == 0;
		date |= name == 4 && strncasecmp(l, "Date", 4) == 0;
		msgid |= name == 10 && strncasecmp(l, "Message-ID", 10) == 0;
	}
	FUZZ_ASSERT(from && date && msgid);
}

/* check_queued - what submit() committed for this input */
static void check_queued(struct spool_msg *m, enum mode mode,
			 const uint8_t *data, size_t size)
{
	size_t flen, longest;
	char *file = fuzz_memfd_read(m->fd, &flen);
	const char *msg = file + m->data_off, *body;
	size_t mlen = (size_t)m->data_len, hlen;
	struct buf want = BUF_INIT(4 * 1024 * 1024);
	struct buf got = BUF_INIT(4 * 1024 * 1024);
	const char *end;

	FUZZ_ASSERT((off_t)flen == m->data_off + m->data_len);
	FUZZ_ASSERT(m->nrcpts > 0);
	FUZZ_ASSERT(*m->sender == '\0' ||
		    addr_check_envelope(m->sender) == NULL);
	for (size_t i = 0; i < m->nrcpts; i++)
		FUZZ_ASSERT(addr_check_envelope(m->rcpts[i].addr) == NULL);
	check_crlf_text(msg, mlen, LINE_LIMIT);
	end = memmem(msg, mlen, "\r\n\r\n", 4);
	FUZZ_ASSERT(end != NULL);
	hlen = (size_t)(end - msg) + 2;
	check_headers(msg, hlen);
	body = msg + hlen + 2;
	ref_body((const char *)data, size, mode, &want, &longest);
	if (longest > LINE_LIMIT) {
		/* re-encoded: quoted-printable that decodes to the body */
		check_crlf_text(body, mlen - hlen - 2, 76);
		qp_decode(body, mlen - hlen - 2, &got);
	} else {
		buf_append(&got, body, mlen - hlen - 2);
	}
	FUZZ_ASSERT(got.len == want.len);
	FUZZ_ASSERT(got.len == 0 || memcmp(got.data, want.data, got.len) == 0);
	buf_free(&want);
	buf_free(&got);
	free(file);
}

/* submit_as - one submission of the input in one mode */
static void submit_as(enum mode mode, const uint8_t *data, size_t size)
{
	const struct conf *c = mode == MODE_BS ? &conf_always : &conf_local;
	struct submission sub;
	struct submit_error e;
	struct spool_msg m;
	char err[256];
	int rc;

	submission_init(&sub);
	if (mode == MODE_T) {
		sub.extract = true;
		rc = submit_sender(c, &sub, NULL, err, sizeof(err));
	} else if (mode == MODE_I) {
		sub.dot_ends = false;
		rc = submit_sender(c, &sub, "www-data", err, sizeof(err));
		rc |= submit_recipient(c, &sub, "root", NULL, err,
				       sizeof(err));
	} else {
		sub.smtp = true;
		sub.max_size = c->mail.max_size;
		rc = submit_sender(c, &sub, "alice@example.org", err,
				   sizeof(err));
		rc |= submit_recipient(c, &sub, "bob@example.org", "", err,
				       sizeof(err));
	}
	FUZZ_ASSERT(rc == 0);
	fuzz_memfd_reset(memfd, data, size);
	input_init(&in, memfd);
	rc = submit(c, &sub, &in, &spool, &m, &e);
	FUZZ_ASSERT(rc == 0 || rc == -1);
	if (rc == 0) {
		check_queued(&m, mode, data, size);
		spool_msg_free(&m);
	} else {
		FUZZ_ASSERT(e.ex != 0);
		FUZZ_ASSERT(e.smtp >= 400 && e.smtp <= 599);
		FUZZ_ASSERT(e.text[0] != '\0');
	}
	submission_free(&sub);
	fuzz_empty_dir(qdir);
	fuzz_empty_dir(tmpdir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	submit_as(MODE_T, data, size);
	submit_as(MODE_I, data, size);
	submit_as(MODE_BS, data, size);
	return 0;
}
