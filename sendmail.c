/*
 * NAME
 *	sendmail - outbox's command line: parse it, pick a mode, run it
 * SYNOPSIS
 *	sendmail [options] [--] [recipient ...]
 *	mailq
 *	newaliases
 * DESCRIPTION
 *	Options are described by one table (sendmail_opts); each entry
 *	says whether the letter takes a value and what it does. Letters may
 *	be clustered (-ti), values glued or separate (-fX, -f X), and
 *	options may follow recipients (as with Postfix on Linux) until "--".
 *	The work is done by the modes: submit (default), SMTP on stdin
 *	(-bs), flush (-q, -qI), list (-bp, mailq), verify (-bv). See
 *	docs/outbox.8.
 * DIAGNOSTICS
 *	Exit status per sysexits(3): 64 usage, 65 bad input, 69 refused by
 *	the relay, 73/74 spool not writable, 78 configuration.
 */
#include <ctype.h>
#include <libgen.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf/conf.h"
#include "message/dkim.h"
#include "message/input.h"
#include "message/smtpd.h"
#include "message/submit.h"
#include "queue/admin.h"
#include "queue/mailq.h"
#include "queue/runner.h"
#include "queue/spool.h"
#include "relay/check.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/ossl.h"
#include "util/strlist.h"

enum mode {
	MODE_SUBMIT,		/* -bm, the default */
	MODE_SMTP,		/* -bs */
	MODE_FLUSH,		/* -q, -qI<id> */
	MODE_LIST,		/* -bp, mailq */
	MODE_VERIFY,		/* -bv */
	MODE_NEWALIASES,	/* -bi, -I, newaliases */
	MODE_ADMIN,		/* --hold, --release, --delete ID */
	MODE_DKIM_RECORD,	/* --dkim-record */
	MODE_CHECK,		/* --check-relays */
};

struct cmdline {
	enum mode mode;
	const char *conf_path;		/* -C */
	const char *flush_id;		/* -qI<id> */
	long interval;			/* -q<interval>, seconds */
	bool queue_only;		/* -odq */
	bool background;		/* -odb */
	const char *sender;		/* -f, -r */
	const char *fullname;		/* -F */
	bool extract;			/* -t */
	bool dot_ends;			/* cleared by -i, -oi */
	bool eightbit;			/* -B 8BITMIME */
	char notify[64];		/* -N, as "NOTIFY=..." */
	char ret[16];			/* -R, as "RET=..." */
	char envid[320];		/* -V, as "ENVID=<xtext>" */
	struct strlist args;		/* recipients */
	bool json;			/* --json: machine-readable mailq */
	enum admin_op admin;		/* --hold, --release, --delete */
	const char *admin_id;
};

enum optarg_kind { NOARG, ARG, GLUED };	/* GLUED: value only if glued */

struct opt {
	char letter;
	enum optarg_kind kind;
	void (*set)(struct cmdline *, const char *);
};

/* opt_ignore - accepted for compatibility, no effect (as Postfix) */
static void opt_ignore(struct cmdline *cl, const char *v)
{
	(void)cl;
	(void)v;
}

/* opt_t - -t: also take recipients from the message header */
static void opt_t(struct cmdline *cl, const char *v)
{
	(void)v;
	cl->extract = true;
}

/* opt_i - -i: a line of only "." does not end the message */
static void opt_i(struct cmdline *cl, const char *v)
{
	(void)v;
	cl->dot_ends = false;
}

/* opt_f - -f, -r: the envelope sender */
static void opt_f(struct cmdline *cl, const char *v)
{
	cl->sender = v;
}

/* opt_F - -F: the sender's full name, for From: */
static void opt_F(struct cmdline *cl, const char *v)
{
	if (strpbrk(v, "\r\n"))
		log_die(EX_USAGE, "-F: line break in the full name");
	cl->fullname = v;
}

/* opt_C - -C: the configuration file to read */
static void opt_C(struct cmdline *cl, const char *v)
{
	cl->conf_path = v;
}

/* opt_v - -v: tell the caller what happens */
static void opt_v(struct cmdline *cl, const char *v)
{
	(void)cl;
	(void)v;
	log_set_verbose(true);
}

/* opt_I - like -bi: initialise the alias database (nothing to do) */
static void opt_I(struct cmdline *cl, const char *v)
{
	(void)v;
	cl->mode = MODE_NEWALIASES;
}

/* opt_B - body type: 7BIT or 8BITMIME */
static void opt_B(struct cmdline *cl, const char *v)
{
	if (strcasecmp(v, "8BITMIME") == 0)
		cl->eightbit = true;
	else if (strcasecmp(v, "7BIT") == 0)
		cl->eightbit = false;
	else
		log_die(EX_USAGE, "-B%s: expected 7BIT or 8BITMIME", v);
}

/* opt_N - DSN notify: never, or a list of success, failure, delay */
static void opt_N(struct cmdline *cl, const char *v)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	struct buf b = BUF_INIT(sizeof(cl->notify) - 1);
	char tmp[64], *save = NULL;
	bool bad = strlen(v) >= sizeof(tmp);

	snprintf(tmp, sizeof(tmp), "%s", v);
	buf_puts(&b, "NOTIFY=");
	if (strcasecmp(v, "never") == 0)
		buf_puts(&b, "NEVER");
	else
		for (char *w = strtok_r(tmp, ",", &save); w && !bad;
		     w = strtok_r(NULL, ",", &save)) {
			size_t i = 0;

			while (i < 3 && strcasecmp(w, words[i]) != 0)
				i++;
			bad = i == 3;
			if (!bad)
				buf_printf(&b, "%s%s", b.len > 7 ? "," : "",
					   words[i]);
		}
	if (bad || b.len == 7)
		log_die(EX_USAGE, "-N %s: expected never, or a list of "
			"success, failure, delay", v);
	snprintf(cl->notify, sizeof(cl->notify), "%s", buf_str(&b));
	buf_free(&b);
}

/* opt_R - DSN return: full or hdrs */
static void opt_R(struct cmdline *cl, const char *v)
{
	if (strcasecmp(v, "full") != 0 && strcasecmp(v, "hdrs") != 0)
		log_die(EX_USAGE, "-R %s: expected full or hdrs", v);
	snprintf(cl->ret, sizeof(cl->ret), "RET=%s",
		 strcasecmp(v, "full") ? "HDRS" : "FULL");
}

/* opt_V - DSN envelope id, xtext-encoded (RFC 3461 4) */
static void opt_V(struct cmdline *cl, const char *v)
{
	struct buf b = BUF_INIT(sizeof(cl->envid) - 1);
	int rc = buf_puts(&b, "ENVID=");

	if (strlen(v) > 100 || *v == '\0')
		log_die(EX_USAGE, "-V: an envelope id of 1 to 100 characters");
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		rc |= *p < '!' || *p > '~' || *p == '+' || *p == '=' ?
		    buf_printf(&b, "+%02X", *p) : buf_putc(&b, (char)*p);
	if (rc < 0)
		log_die(EX_USAGE, "-V: envelope id too long");
	snprintf(cl->envid, sizeof(cl->envid), "%s", buf_str(&b));
	buf_free(&b);
}

/* opt_b - -bm (default), -bs, -bp, -bv, -bi */
static void opt_b(struct cmdline *cl, const char *v)
{
	static const struct { const char *name; enum mode mode; } modes[] = {
		{ "m", MODE_SUBMIT }, { "s", MODE_SMTP }, { "p", MODE_LIST },
		{ "v", MODE_VERIFY }, { "i", MODE_NEWALIASES },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++)
		if (strcmp(v, modes[i].name) == 0) {
			cl->mode = modes[i].mode;
			return;
		}
	log_die(EX_USAGE, "-b%s: unsupported mode", v);
}

/* opt_o - -oi, -od[biq]; -oe[mpqw] and other letters are ignored */
static void opt_o(struct cmdline *cl, const char *v)
{
	if (strcmp(v, "i") == 0)
		cl->dot_ends = false;
	else if (strcmp(v, "dq") == 0 || strcmp(v, "db") == 0 ||
		 strcmp(v, "di") == 0) {
		cl->queue_only = v[1] == 'q';
		cl->background = v[1] == 'b';
	}
}

/* opt_q - -q (flush now), -qI<id> (one message), -q<interval> (runner:
 * a number with s, m, h, d or w; minutes when bare, as sendmail) */
static void opt_q(struct cmdline *cl, const char *v)
{
	char *end;
	long n;

	cl->mode = MODE_FLUSH;
	if (*v == '\0')
		return;
	if (v[0] == 'I' && spool_id_valid(v + 1)) {
		cl->flush_id = v + 1;
		return;
	}
	n = isdigit((unsigned char)*v) ? strtol(v, &end, 10) : 0;
	if (n > 0 && n < 100000 && (end[0] == '\0' || end[1] == '\0') &&
	    strchr("smhdw", *end)) {
		static const long unit[] = { 1, 60, 3600, 86400, 604800 };

		cl->interval = n * (*end ? unit[strchr("smhdw", *end) -
						  "smhdw"] : 60);
		return;
	}
	log_die(EX_USAGE, "-q%s: expected -q, -qI<queue id> or -q<interval> "
		"(like -q1m)", v);
}

static const struct opt sendmail_opts[] = {
	{ 't', NOARG, opt_t },
	{ 'i', NOARG, opt_i },
	{ 'f', ARG, opt_f },
	{ 'r', ARG, opt_f },
	{ 'F', ARG, opt_F },
	{ 'C', ARG, opt_C },
	{ 'v', NOARG, opt_v },
	{ 'b', ARG, opt_b },
	{ 'o', ARG, opt_o },
	{ 'q', GLUED, opt_q },
	{ 'B', ARG, opt_B },
	{ 'N', ARG, opt_N },
	{ 'R', ARG, opt_R },
	{ 'V', ARG, opt_V },
	{ 'I', NOARG, opt_I },
	/* accepted and ignored, with Postfix's argument syntax */
	{ 'A', ARG, opt_ignore },
	{ 'G', NOARG, opt_ignore },
	{ 'L', ARG, opt_ignore },
	{ 'O', ARG, opt_ignore },
	{ 'U', NOARG, opt_ignore },
	{ 'X', ARG, opt_ignore },
	{ 'h', ARG, opt_ignore },
	{ 'm', NOARG, opt_ignore },
	{ 'n', NOARG, opt_ignore },
};

/* opt_find - the table entry for a letter */
static const struct opt *opt_find(char c)
{
	for (size_t i = 0; i < sizeof(sendmail_opts) / sizeof(*sendmail_opts);
	     i++)
		if (sendmail_opts[i].letter == c)
			return &sendmail_opts[i];
	return NULL;
}

/* parse_cluster - "-ti", "-fX", "-f" X; returns argv entries consumed */
static int parse_cluster(struct cmdline *cl, int argc, char **argv, int i)
{
	const char *p = argv[i] + 1;

	for (; *p; p++) {
		const struct opt *o = opt_find(*p);

		if (o == NULL)
			log_die(EX_USAGE, "unknown option -%c (see outbox(8))",
				*p);
		if (o->kind == NOARG) {
			o->set(cl, NULL);
			continue;
		}
		if (p[1] || o->kind == GLUED) {
			o->set(cl, p + 1);
			return 1;
		}
		if (i + 1 >= argc)
			log_die(EX_USAGE, "option -%c needs a value", *p);
		o->set(cl, argv[i + 1]);
		return 2;
	}
	return 1;
}

/* parse_long - --json, --hold ID, --release ID, --delete ID */
static int parse_long(struct cmdline *cl, int argc, char **argv, int i)
{
	static const struct { const char *name; enum admin_op op; } ops[] = {
		{ "--hold", ADMIN_HOLD }, { "--release", ADMIN_RELEASE },
		{ "--delete", ADMIN_DELETE },
	};

	if (strcmp(argv[i], "--json") == 0) {
		cl->json = true;
		return 1;
	}
	if (strcmp(argv[i], "--dkim-record") == 0) {
		cl->mode = MODE_DKIM_RECORD;
		return 1;
	}
	if (strcmp(argv[i], "--check-relays") == 0) {
		cl->mode = MODE_CHECK;
		return 1;
	}
	for (size_t k = 0; k < sizeof(ops) / sizeof(*ops); k++) {
		if (strcmp(argv[i], ops[k].name) != 0)
			continue;
		if (i + 1 >= argc)
			log_die(EX_USAGE, "%s needs a queue id", argv[i]);
		cl->mode = MODE_ADMIN;
		cl->admin = ops[k].op;
		cl->admin_id = argv[i + 1];
		return 2;
	}
	log_die(EX_USAGE, "unknown option %s (see outbox(8))", argv[i]);
}

/* parse_args - the whole command line */
static void parse_args(struct cmdline *cl, int argc, char **argv)
{
	bool opts = true;

	for (int i = 1; i < argc;) {
		const char *a = argv[i];

		if (opts && strcmp(a, "--") == 0) {
			opts = false;
			i++;
		} else if (opts && a[0] == '-' && a[1] == '-') {
			i += parse_long(cl, argc, argv, i);
		} else if (opts && a[0] == '-' && a[1]) {
			i += parse_cluster(cl, argc, argv, i);
		} else {
			strlist_add(&cl->args, a);
			i++;
		}
	}
}

/* plain_text - an error text without its enhanced status code */
static const char *plain_text(const char *t)
{
	return isdigit((unsigned char)t[0]) && t[1] == '.' ?
	    t + strcspn(t, " ") + 1 : t;
}

/* arg_control - what is wrong with an address argument holding a
 * control character, or NULL: checked on the whole argument, because a
 * line break outside <...> would vanish with the display text */
static const char *arg_control(const char *s)
{
	if (strpbrk(s, "\r\n"))
		return "line break in address";
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "control character in address";
	return NULL;
}

/* build_envelope - the submission from the command line, or die */
static void build_envelope(const struct conf *c, const struct cmdline *cl,
			   struct submission *sub)
{
	struct buf dsn = BUF_INIT(512);
	const char *why;
	char err[512];

	submission_init(sub);
	sub->fullname = cl->fullname;
	sub->extract = cl->extract;
	sub->dot_ends = cl->dot_ends;
	sub->eightbit = cl->eightbit;
	sub->notify = cl->notify[0] ? cl->notify : NULL;
	sub->max_size = c->mail.max_size;
	buf_printf(&dsn, "%s%s%s", cl->ret, cl->ret[0] && cl->envid[0] ?
		   " " : "", cl->envid);
	sub->mail_dsn = dsn.len ? buf_steal(&dsn) : NULL;
	buf_free(&dsn);
	if (cl->sender && (why = arg_control(cl->sender)) != NULL)
		log_die(EX_USAGE, "-f %s: %s", cl->sender, why);
	if (submit_sender(c, sub, cl->sender, err, sizeof(err)) < 0)
		log_die(EX_USAGE, "-f %s: %s", cl->sender, err);
	for (size_t i = 0; i < cl->args.n; i++) {
		if ((why = arg_control(cl->args.v[i])) != NULL)
			log_die(EX_USAGE, "%s: bad recipient address: %s",
				cl->args.v[i], why);
		if (submit_recipient_list(c, sub, cl->args.v[i], sub->notify,
					  err, sizeof(err)) < 0)
			log_die(EX_USAGE, "%s: %s", cl->args.v[i], err);
	}
}

/* mode_submit - queue the message, then one delivery attempt */
static int mode_submit(const struct conf *c, const struct cmdline *cl)
{
	static struct input in;
	struct submission sub;
	struct submit_error e;
	struct spool s;
	struct spool_msg m;
	int rc, ex = EX_OK;

	if (!cl->queue_only && !cl->background && c->nrelays > 0 &&
	    c->relays[0].tls != CONF_TLS_NONE)
		ossl_warm();	/* TLS comes next: load it while we spool */
	build_envelope(c, cl, &sub);
	if (sub.rcpts.n == 0 && !sub.extract)
		log_die(EX_USAGE, "no recipients given (use -t to read them "
			"from the message)");
	spool_open(c, &s, SPOOL_CREATE);
	input_init(&in, STDIN_FILENO);
	rc = submit(c, &sub, &in, &s, &m, &e);
	if (rc < 0)
		log_die(e.ex, "%s; nothing was queued", plain_text(e.text));
	if (rc == 0 && cl->queue_only)
		log_note("%s: queued in %s (-odq)", m.id, s.path);
	else if (rc == 0 && cl->background)
		ex = runner_deliver_detached(c, &s, &m);
	else if (rc == 0)
		ex = runner_deliver_new(c, &s, &m, true);
	if (rc == 0)
		spool_msg_free(&m);
	submission_free(&sub);
	spool_close(&s);
	return ex;
}

/* mode_verify - -bv: what would happen to each recipient */
static int mode_verify(const struct conf *c, const struct cmdline *cl)
{
	struct submission sub;
	const struct conf_relay *rel;

	build_envelope(c, cl, &sub);
	if (sub.rcpts.n == 0)
		log_die(EX_USAGE, "-bv: no recipients given");
	rel = conf_relay_for(c, sub.sender);
	for (size_t i = 0; i < sub.rcpts.n; i++) {
		if (rel)
			printf("%s... deliverable: relay %s port %u (%s), "
			       "sender <%s>\n", sub.rcpts.v[i], rel->host,
			       rel->port, rel->tls == CONF_TLS_IMPLICIT ?
			       "tls" : rel->tls == CONF_TLS_NONE ? "no tls" :
			       "starttls", sub.sender);
		else if (c->nrelays)
			printf("%s... queued only: no relay takes sender "
			       "<%s>\n", sub.rcpts.v[i], sub.sender);
		else
			printf("%s... queued only: no relay configured\n",
			       sub.rcpts.v[i]);
	}
	submission_free(&sub);
	return EX_OK;
}

/* mode_flush - sendmail -q, -qI<id> */
static int mode_flush(const struct conf *c, const struct cmdline *cl)
{
	struct spool s;
	int ex;

	if (cl->args.n)
		log_die(EX_USAGE, "-q takes no arguments (did you mean -q%s?)",
			cl->args.v[0]);
	if (cl->interval) {
		spool_open(c, &s, SPOOL_CREATE);
		ex = runner_loop(c, &s, cl->interval);
		spool_close(&s);
		return ex;
	}
	if (spool_open(c, &s, SPOOL_EXISTING) < 0) {
		spool_close(&s);
		return EX_OK;	/* no spool yet: nothing to flush */
	}
	ex = runner_flush(c, &s, cl->flush_id);
	spool_close(&s);
	return ex;
}

/* mode_dkim_record - the DNS TXT record to publish for each DKIM key */
static int mode_dkim_record(const struct conf *c)
{
	char err[512];

	if (c->ndkim == 0)
		log_die(EX_CONFIG, "no [dkim] section in %s", c->path ?
			c->path : "the configuration");
	for (size_t i = 0; i < c->ndkim; i++) {
		struct buf out = BUF_INIT(16384);

		if (dkim_record(&c->dkim[i], &out, err, sizeof(err)) < 0)
			log_die(EX_CONFIG, "[%s]: %s", c->dkim[i].label, err);
		printf("; [%s]\n%s", c->dkim[i].label, buf_str(&out));
		buf_free(&out);
	}
	return EX_OK;
}

/* mode_check - --check-relays: probe each relay, send nothing */
static int mode_check(const struct conf *c)
{
	struct spool s;
	int ex;

	spool_open(c, &s, SPOOL_CREATE);	/* the OAuth2 token cache */
	ex = relay_check(c, s.dirfd);
	spool_close(&s);
	return ex;
}

/* run_mode - dispatch */
static int run_mode(const struct conf *c, const struct cmdline *cl)
{
	switch (cl->mode) {
	case MODE_LIST:
		return mailq_list(c, cl->json);
	case MODE_ADMIN:
		return admin_apply(c, cl->admin, cl->admin_id);
	case MODE_DKIM_RECORD:
		return mode_dkim_record(c);
	case MODE_CHECK:
		return mode_check(c);
	case MODE_FLUSH:
		return mode_flush(c, cl);
	case MODE_SMTP:
		return smtpd_run(c);
	case MODE_VERIFY:
		return mode_verify(c, cl);
	default:
		return mode_submit(c, cl);
	}
}

int main(int argc, char **argv)
{
	static struct cmdline cl = { .mode = MODE_SUBMIT, .dot_ends = true };
	const char *name = argc > 0 ? basename(argv[0]) : "sendmail";
	const struct conf *c;
	int ex;

	log_init("sendmail");
	if (strcmp(name, "mailq") == 0)
		cl.mode = MODE_LIST;
	else if (strcmp(name, "newaliases") == 0)
		cl.mode = MODE_NEWALIASES;
	parse_args(&cl, argc, argv);
	if (cl.mode == MODE_NEWALIASES) {
		strlist_free(&cl.args);
		return EX_OK;	/* aliases live in the config, not a database */
	}
	setlocale(LC_CTYPE, "C.UTF-8");
	c = conf_load(cl.conf_path);
	ex = run_mode(c, &cl);
	conf_free(c);
	strlist_free(&cl.args);
	return ex;
}
