/*
 * NAME
 *	spool - the durable per-user queue on disk
 * SYNOPSIS
 *	#include "queue/spool.h"
 * DESCRIPTION
 *	The spool is a directory owned by the calling user, mode 0700, with
 *	two subdirectories: tmp/ (files being written) and q/ (committed
 *	messages). docs/spool.md is the state machine: which files exist in
 *	each state and how every crash leftover is recovered. In short:
 *
 *	  q/ID     the queue file: envelope header, blank line, the message
 *	           in CRLF form. Written once in tmp/, fsync'd, linked into
 *	           q/ and the directory fsync'd: that is the commit.
 *	           Never modified afterwards; its flock is the message lock.
 *	  q/ID.st  per-recipient delivery state, replaced atomically.
 *
 *	All access goes through directory descriptors opened without
 *	following symlinks, so nothing can be redirected outside the spool.
 * DIAGNOSTICS
 *	Functions that create or commit die with EX_CANTCREAT (73) or
 *	EX_IOERR (74) and leave no partial file; the rest return -1 with a
 *	message in the caller's err buffer.
 */
#ifndef OUTBOX_SPOOL_H
#define OUTBOX_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "conf/conf.h"
#include "util/strlist.h"

#define SPOOL_ID_MAX 32
#define SPOOL_DKIM_SLOT 2400	/* room for one DKIM-Signature field */

struct spool {
	char *path;	/* for messages only */
	int dirfd;	/* the spool directory */
	int qfd;	/* q/ */
	int tmpfd;	/* tmp/ */
	unsigned unsynced;	/* removals since q/ was last fsync'd */
};

/* does the message need SMTPUTF8 */
enum spool_utf8 {
	UTF8_NO,	/* all ASCII */
	UTF8_WANT,	/* UTF-8 in the headers: SMTPUTF8 if the relay has it */
	UTF8_NEED,	/* UTF-8 in an envelope address: SMTPUTF8 or fail */
};

/* recipient states */
#define RCPT_PENDING	'p'	/* not yet accepted; retried */
#define RCPT_DONE	'd'	/* accepted by the relay; never sent again */
#define RCPT_FAILED	'f'	/* permanently rejected, sender not yet told */
#define RCPT_BOUNCED	'b'	/* failed, and a bounce was queued for it */

struct spool_rcpt {
	char *addr;
	char *dsn;	/* "NOTIFY=.. ORCPT=.." for RCPT, NULL if none */
	char state;
	char *reply;	/* last reply or error, NULL if none */
};

/* the envelope as submitted: what the queue file's header records */
struct spool_env {
	const char *sender;		/* "" is the null sender */
	const char *mail_dsn;		/* "RET=.. ENVID=.." or NULL */
	const struct strlist *rcpts;
	const struct strlist *rcpt_dsn;	/* parallel to rcpts, or NULL */
	size_t dkim_slots;		/* DKIM-Signature fields to come */
};

struct spool_msg {
	char id[SPOOL_ID_MAX];
	int fd;		/* queue file, flocked while we hold it */
	char *sender;	/* "" is the null sender */
	char *body;	/* "7BIT" or "8BITMIME" */
	char *mail_dsn;	/* NULL or "RET=.. ENVID=.." */
	enum spool_utf8 smtputf8;
	struct strlist dkim;	/* DKIM-Signature fields sent first, TAB=fold */
	time_t arrival;
	off_t data_off;	/* where the message starts in the file */
	off_t data_len;
	struct spool_rcpt *rcpts;
	size_t nrcpts;
	/* delivery state */
	unsigned attempts;
	time_t last_try;
	time_t next_try;	/* the queue runner waits until then */
	bool held;		/* on hold: never tried until released */
	bool notified;		/* submitter was told (exit 69): no bounce */
	bool conn_fail;		/* last attempt failed before MAIL: no expiry */
	char *error;	/* last message-level error, NULL if none */
};

struct spool_writer {
	struct spool *spool;
	char id[SPOOL_ID_MAX];
	int fd;
	off_t tail_off;	/* where the size/body/smtputf8 fields are */
	bool eightbit;	/* set before commit: BODY=8BITMIME */
	enum spool_utf8 utf8;	/* set before commit */
	size_t dkim_slots;
	struct strlist dkim;	/* set before commit, at most dkim_slots */
	off_t data_off;
	off_t data_len;
	char buf[65536];
	size_t used;
};

enum spool_open_mode { SPOOL_CREATE, SPOOL_EXISTING };

int spool_open(const struct conf *, struct spool *, enum spool_open_mode);
void spool_close(struct spool *);

void spool_create(struct spool *, struct spool_writer *);
void spool_put_envelope(struct spool_writer *, const struct spool_env *);
void spool_write(struct spool_writer *, const void *, size_t);
int spool_commit(struct spool_writer *, struct spool_msg *);
void spool_abort(struct spool_writer *);
int spool_detach(struct spool_writer *);

enum spool_lock { SPOOL_LOCKED, SPOOL_BUSY, SPOOL_GONE, SPOOL_BAD };
enum spool_lock spool_lock(struct spool *, const char *id,
			   struct spool_msg *, char *err, size_t errlen);
int spool_read(struct spool *, const char *id, struct spool_msg *,
	       char *err, size_t errlen);
int spool_save_state(struct spool *, struct spool_msg *);
int spool_remove(struct spool *, struct spool_msg *);
int spool_sync(struct spool *);
void spool_msg_free(struct spool_msg *);

size_t spool_pending(const struct spool_msg *);
int spool_list(struct spool *, struct strlist *ids);
void spool_clean(struct spool *);
bool spool_id_valid(const char *);

#endif
