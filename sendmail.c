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
 *	The work is done by the modes: submit (default), flush (-q, -qI),
 *	list (-bp, mailq). See docs/outbox.8.
 * DIAGNOSTICS
 *	Exit status per sysexits(3): 64 usage, 65 bad input, 69 refused by
 *	the relay, 73/74 spool not writable, 78 configuration.
 */
#include <libgen.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "conf/conf.h"
#include "message/submit.h"
#include "queue/mailq.h"
#include "queue/runner.h"
#include "queue/spool.h"
#include "util/log.h"
#include "util/strlist.h"

enum mode { MODE_SUBMIT, MODE_FLUSH, MODE_LIST, MODE_NEWALIASES };

struct cmdline {
	enum mode mode;
	const char *conf_path;		/* -C */
	const char *flush_id;		/* -qI<id> */
	bool queue_only;		/* -odq */
	struct submit_opts submit;
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

static void opt_t(struct cmdline *cl, const char *v)
{
	(void)v;
	cl->submit.extract = true;
}

static void opt_i(struct cmdline *cl, const char *v)
{
	(void)v;
	cl->submit.dot_ends = false;
}

static void opt_f(struct cmdline *cl, const char *v)
{
	cl->submit.sender = v;
}

static void opt_F(struct cmdline *cl, const char *v)
{
	if (strpbrk(v, "\r\n"))
		log_die(EX_USAGE, "-F: line break in the full name");
	cl->submit.fullname = v;
}

static void opt_C(struct cmdline *cl, const char *v)
{
	cl->conf_path = v;
}

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

/* opt_b - -bm (default), -bp (list), -bi (newaliases) */
static void opt_b(struct cmdline *cl, const char *v)
{
	if (strcmp(v, "m") == 0)
		cl->mode = MODE_SUBMIT;
	else if (strcmp(v, "p") == 0)
		cl->mode = MODE_LIST;
	else if (strcmp(v, "i") == 0)
		cl->mode = MODE_NEWALIASES;
	else
		log_die(EX_USAGE, "-b%s: unsupported mode", v);
}

/* opt_o - -oi, -od[biq], -oe[mp...]; other letters are ignored */
static void opt_o(struct cmdline *cl, const char *v)
{
	if (strcmp(v, "i") == 0)
		cl->submit.dot_ends = false;
	else if (strcmp(v, "dq") == 0)
		cl->queue_only = true;
	else if (strcmp(v, "db") == 0 || strcmp(v, "di") == 0)
		cl->queue_only = false;
}

/* opt_q - -q (flush now), -qI<id> (one message) */
static void opt_q(struct cmdline *cl, const char *v)
{
	cl->mode = MODE_FLUSH;
	if (*v == '\0')
		return;
	if (v[0] == 'I' && spool_id_valid(v + 1)) {
		cl->flush_id = v + 1;
		return;
	}
	log_die(EX_USAGE, "-q%s: expected -q or -qI<queue id>", v);
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
	/* accepted and ignored, with Postfix's argument syntax */
	{ 'A', ARG, opt_ignore },
	{ 'B', ARG, opt_ignore },
	{ 'G', NOARG, opt_ignore },
	{ 'I', NOARG, opt_I },
	{ 'L', ARG, opt_ignore },
	{ 'N', ARG, opt_ignore },
	{ 'O', ARG, opt_ignore },
	{ 'R', ARG, opt_ignore },
	{ 'U', NOARG, opt_ignore },
	{ 'V', ARG, opt_ignore },
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

/* parse_args - the whole command line */
static void parse_args(struct cmdline *cl, int argc, char **argv)
{
	bool opts = true;

	for (int i = 1; i < argc;) {
		const char *a = argv[i];

		if (opts && strcmp(a, "--") == 0) {
			opts = false;
			i++;
		} else if (opts && a[0] == '-' && a[1]) {
			i += parse_cluster(cl, argc, argv, i);
		} else {
			strlist_add(&cl->submit.args, a);
			i++;
		}
	}
}

/* mode_submit - queue the message, then one delivery attempt */
static int mode_submit(const struct conf *c, const struct cmdline *cl)
{
	struct spool s;
	struct spool_msg m;
	int ex;

	spool_open(c, &s, SPOOL_CREATE);
	if (submit(c, &cl->submit, &s, &m) < 0) {
		spool_close(&s);
		return EX_OK;	/* queued; the warning said so */
	}
	if (cl->queue_only) {
		log_note("%s: queued in %s (-odq)", m.id, s.path);
		ex = EX_OK;
	} else {
		ex = runner_deliver_new(c, &s, &m);
	}
	spool_msg_free(&m);
	spool_close(&s);
	return ex;
}

/* mode_flush - sendmail -q, -qI<id> */
static int mode_flush(const struct conf *c, const struct cmdline *cl)
{
	struct spool s;
	int ex;

	if (spool_open(c, &s, SPOOL_EXISTING) < 0) {
		spool_close(&s);
		return EX_OK;	/* no spool yet: nothing to flush */
	}
	ex = runner_flush(c, &s, cl->flush_id);
	spool_close(&s);
	return ex;
}

int main(int argc, char **argv)
{
	struct cmdline cl = { .mode = MODE_SUBMIT };
	const char *name = argc > 0 ? basename(argv[0]) : "sendmail";
	const struct conf *c;
	int ex;

	log_init("sendmail");
	cl.submit.dot_ends = true;
	if (strcmp(name, "mailq") == 0)
		cl.mode = MODE_LIST;
	else if (strcmp(name, "newaliases") == 0)
		cl.mode = MODE_NEWALIASES;
	parse_args(&cl, argc, argv);
	if (cl.mode == MODE_NEWALIASES) {
		strlist_free(&cl.submit.args);
		return EX_OK;	/* aliases live in the config: nothing to build */
	}
	setlocale(LC_CTYPE, "C.UTF-8");
	c = conf_load(cl.conf_path);
	switch (cl.mode) {
	case MODE_LIST:
		ex = mailq_list(c);
		break;
	case MODE_FLUSH:
		ex = mode_flush(c, &cl);
		break;
	default:
		ex = mode_submit(c, &cl);
		break;
	}
	conf_free(c);
	strlist_free(&cl.submit.args);
	return ex;
}
