/*
 * NAME
 *	fuzz_spool - queue files and state files read back from the spool
 *	(queue/spool.c), and mailq's listing of them (queue/mailq.c)
 * FEEDS
 *	The input is a queue file, optionally followed by the line
 *	"--outbox-fuzz-state--" and the message's state file (q/ID.st).
 *	Both are written into a scratch spool, under the id the file's "id"
 *	line names (when it is a valid id), and read back with spool_lock()
 *	and spool_read(), then listed with mailq_list() (text and --json,
 *	standard output in a memfd). When the file has a 20-digit "size"
 *	field that disagrees with the file, it is read a second time with
 *	that field corrected, so that mutations of the envelope lines and of
 *	the state file get past the size check.
 * ASSERTS
 *	- a file is either refused (SPOOL_BAD, spool_read() -1) or read
 *	  with everything outbox relies on: a sender, at least one
 *	  recipient, a body type, an arrival time, a message that ends
 *	  exactly at the end of the file, recipient states from "pdfb", no
 *	  field holding a line break; spool_lock() and spool_read() agree;
 *	- the delivery state survives spool_save_state() and reading back
 *	  unchanged (attempts, times, flags, error, each recipient's state
 *	  and reply);
 *	- mailq --json prints valid JSON (UTF-8, escaped strings) whatever
 *	  the files hold;
 *	- nothing is left in the spool afterwards.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "fuzz/common.h"
#include "queue/mailq.h"
#include "queue/spool.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"

#define STATE_SEP	"\n--outbox-fuzz-state--\n"
#define DEFAULT_ID	"0123456789ABCDEF"

static struct conf conf;
static struct spool spool;
static char *tmpdir;
static int out_fd, saved_out;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *base = fuzz_tmpdir("spool");
	struct buf b = BUF_INIT(4096);

	(void)argc;
	(void)argv;
	log_set_stderr(false);
	tzset();
	sys_fqdn();
	buf_printf(&b, "%s/spool", base);
	conf.queue.dir = buf_steal(&b);
	if (spool_open(&conf, &spool, SPOOL_CREATE) < 0)
		abort();
	buf_printf(&b, "%s/tmp", conf.queue.dir);
	tmpdir = buf_steal(&b);
	out_fd = fuzz_memfd("", 0);
	saved_out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 10);
	if (saved_out < 0)
		abort();
	return 0;
}

/* put - q/NAME holds exactly data */
static void put(const char *name, const char *data, size_t len)
{
	int fd = openat(spool.qfd, name, O_WRONLY | O_CREAT | O_TRUNC |
			O_CLOEXEC, 0600);

	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
		abort();
	close(fd);
}

/* queue_id - the id the file names, if valid; else a fixed one */
static void queue_id(const char *q, size_t len, char *id, size_t idlen)
{
	const char *p = memmem(q, len, "\nid ", 4), *e;

	snprintf(id, idlen, "%s", DEFAULT_ID);
	if (p == NULL)
		return;
	p += 4;
	e = memchr(p, '\n', len - (size_t)(p - q));
	if (e == NULL || e - p <= 0 || (size_t)(e - p) >= idlen)
		return;
	memcpy(id, p, (size_t)(e - p));
	id[e - p] = '\0';
	if (!spool_id_valid(id))
		snprintf(id, idlen, "%s", DEFAULT_ID);
}

/* no_newline - a field read from a line holds no line break */
static void no_newline(const char *s)
{
	FUZZ_ASSERT(s == NULL || strchr(s, '\n') == NULL);
}

/* check_msg - what a reader relies on in an accepted message */
static void check_msg(const struct spool_msg *m, off_t file_size)
{
	FUZZ_ASSERT(m->sender && m->body && m->arrival != 0);
	FUZZ_ASSERT(m->nrcpts > 0);
	FUZZ_ASSERT(m->data_off > 0 && m->data_len >= 0);
	FUZZ_ASSERT(m->data_off <= file_size &&
		    m->data_len == file_size - m->data_off);
	FUZZ_ASSERT(m->smtputf8 == UTF8_NO || m->smtputf8 == UTF8_WANT ||
		    m->smtputf8 == UTF8_NEED);
	no_newline(m->sender);
	no_newline(m->body);
	no_newline(m->mail_dsn);
	no_newline(m->error);
	for (size_t i = 0; i < m->dkim.n; i++)
		no_newline(m->dkim.v[i]);
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct spool_rcpt *r = &m->rcpts[i];

		FUZZ_ASSERT(r->addr && *r->addr);
		FUZZ_ASSERT(r->state && strchr("pdfb", r->state));
		no_newline(r->addr);
		no_newline(r->dsn);
		no_newline(r->reply);
	}
}

/* same_str - both NULL or equal */
static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* check_state_round_trip - save m's state, read it back: unchanged */
static void check_state_round_trip(struct spool_msg *m)
{
	struct spool_msg again;
	char err[256];

	FUZZ_ASSERT(spool_save_state(&spool, m) == 0);
	FUZZ_ASSERT(spool_read(&spool, m->id, &again, err, sizeof(err)) == 0);
	FUZZ_ASSERT(again.attempts == m->attempts);
	FUZZ_ASSERT(again.last_try == m->last_try);
	FUZZ_ASSERT(again.next_try == m->next_try);
	FUZZ_ASSERT(again.held == m->held && again.notified == m->notified &&
		    again.conn_fail == m->conn_fail);
	FUZZ_ASSERT(same_str(again.error, m->error));
	FUZZ_ASSERT(again.nrcpts == m->nrcpts);
	for (size_t i = 0; i < m->nrcpts; i++) {
		FUZZ_ASSERT(again.rcpts[i].state == m->rcpts[i].state);
		FUZZ_ASSERT(same_str(again.rcpts[i].reply,
				     m->rcpts[i].reply));
	}
	spool_msg_free(&again);
}

/*
 * A strict JSON checker (RFC 8259), for mailq --json.
 */
struct json {
	const unsigned char *p, *end;
};

/* NOLINTBEGIN(misc-no-recursion): json_value stops at depth 16 */
static bool json_value(struct json *j, int depth);

/* json_ws - skip white space */
static void json_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* json_utf8 - a well-formed UTF-8 sequence at p; its length, or 0 */
static size_t json_utf8(const unsigned char *p, size_t avail)
{
	unsigned cp, min;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1fu, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0fu, min = 0x800;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07u, min = 0x10000;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ?
	    0 : n;
}

/* json_string - "..." with valid escapes and UTF-8 */
static bool json_string(struct json *j)
{
	if (j->p == j->end || *j->p++ != '"')
		return false;
	while (j->p < j->end && *j->p != '"') {
		size_t n;

		if (*j->p == '\\') {
			if (++j->p == j->end)
				return false;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (j->p + i >= j->end ||
					    !strchr("0123456789abcdefABCDEF",
						    j->p[i]) || !j->p[i])
						return false;
				j->p += 5;
			} else if (*j->p && strchr("\"\\/bfnrt", *j->p)) {
				j->p++;
			} else {
				return false;
			}
			continue;
		}
		if (*j->p < 0x20)
			return false;
		if ((n = json_utf8(j->p, (size_t)(j->end - j->p))) == 0)
			return false;
		j->p += n;
	}
	if (j->p == j->end)
		return false;
	j->p++;
	return true;
}

/* json_number - -?digits(.digits)?([eE][+-]?digits)? */
static bool json_number(struct json *j)
{
	const unsigned char *start;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	start = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	if (j->p == start || (*start == '0' && j->p - start > 1))
		return false;
	return true;	/* mailq prints integers only */
}

/* json_items - the members of an object or the items of an array */
static bool json_items(struct json *j, unsigned char close, int depth)
{
	json_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		json_ws(j);
		if (close == '}') {
			if (!json_string(j))
				return false;
			json_ws(j);
			if (j->p == j->end || *j->p++ != ':')
				return false;
		}
		if (!json_value(j, depth))
			return false;
		json_ws(j);
		if (j->p == j->end)
			return false;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		return *j->p++ == close;
	}
}

/* json_literal - true, false or null */
static bool json_literal(struct json *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return false;
	j->p += n;
	return true;
}

/* json_value - any value */
static bool json_value(struct json *j, int depth)
{
	json_ws(j);
	if (j->p == j->end || depth > 16)
		return false;
	switch (*j->p) {
	case '{':
		j->p++;
		return json_items(j, '}', depth + 1);
	case '[':
		j->p++;
		return json_items(j, ']', depth + 1);
	case '"':
		return json_string(j);
	case 't':
		return json_literal(j, "true");
	case 'f':
		return json_literal(j, "false");
	case 'n':
		return json_literal(j, "null");
	default:
		return json_number(j);
	}
}
/* NOLINTEND(misc-no-recursion) */

/* run_mailq - mailq's output for the spool, malloc'd */
static char *run_mailq(bool json, size_t *len)
{
	fuzz_memfd_reset(out_fd, "", 0);
	fflush(stdout);
	if (dup2(out_fd, STDOUT_FILENO) < 0)
		abort();
	FUZZ_ASSERT(mailq_list(&conf, json) == 0);
	fflush(stdout);
	dup2(saved_out, STDOUT_FILENO);
	return fuzz_memfd_read(out_fd, len);
}

/* check_mailq - the listing works; --json is valid JSON */
static void check_mailq(void)
{
	size_t len;
	char *text = run_mailq(false, &len);
	struct json j;

	free(text);
	text = run_mailq(true, &len);
	j.p = (const unsigned char *)text;
	j.end = j.p + len;
	FUZZ_ASSERT(json_value(&j, 0));
	json_ws(&j);
	FUZZ_ASSERT(j.p == j.end);
	free(text);
}

/* check_files - read q/ID (and q/ID.st) back in every way */
static void check_files(const char *id)
{
	struct spool_msg m, r;
	enum spool_lock lk;
	char err[256], err2[256];
	struct stat st;
	int rc;

	lk = spool_lock(&spool, id, &m, err, sizeof(err));
	FUZZ_ASSERT(lk == SPOOL_LOCKED || lk == SPOOL_BAD);
	rc = spool_read(&spool, id, &r, err2, sizeof(err2));
	FUZZ_ASSERT((rc == 0) == (lk == SPOOL_LOCKED));
	if (rc == 0)
		spool_msg_free(&r);
	if (lk == SPOOL_LOCKED) {
		FUZZ_ASSERT(fstat(m.fd, &st) == 0);
		check_msg(&m, st.st_size);
		check_state_round_trip(&m);
		spool_msg_free(&m);
	} else {
		FUZZ_ASSERT(strncmp(err, id, strlen(id)) == 0);
	}
	check_mailq();
}

/* fix_size - the queue file with its "size" field made to agree with
 * the file, or NULL when there is no such field or it already agrees */
static char *fix_size(const char *q, size_t len)
{
	const char *end = memmem(q, len, "\n\n", 2);
	const char *f = memmem(q, len, "\nsize ", 6);
	char digits[32], *copy;
	size_t off;

	if (end == NULL || f == NULL || f > end || (size_t)(end - f) < 26 ||
	    f[26] != '\n' || strspn(f + 6, "0123456789") != 20)
		return NULL;
	off = (size_t)(end - q) + 2;
	snprintf(digits, sizeof(digits), "%020zu", len - off);
	if (memcmp(f + 6, digits, 20) == 0)
		return NULL;
	copy = xmalloc(len);
	memcpy(copy, q, len);
	memcpy(copy + (f - q) + 6, digits, 20);
	return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *q = (const char *)data;
	const char *sep = memmem(q, size, STATE_SEP, strlen(STATE_SEP));
	size_t qlen = sep ? (size_t)(sep - q) : size;
	char id[SPOOL_ID_MAX], st[SPOOL_ID_MAX + 4];
	char *fixed;

	queue_id(q, qlen, id, sizeof(id));
	snprintf(st, sizeof(st), "%s.st", id);
	put(id, q, qlen);
	if (sep)
		put(st, sep + strlen(STATE_SEP),
		    size - qlen - strlen(STATE_SEP));
	check_files(id);
	if ((fixed = fix_size(q, qlen)) != NULL) {
		put(id, fixed, qlen);
		if (sep)	/* spool_save_state() replaced it */
			put(st, sep + strlen(STATE_SEP),
			    size - qlen - strlen(STATE_SEP));
		else		/* or made it */
			unlinkat(spool.qfd, st, 0);
		check_files(id);
		free(fixed);
	}
	unlinkat(spool.qfd, id, 0);
	unlinkat(spool.qfd, st, 0);
	fuzz_empty_dir(tmpdir);
	return 0;
}
