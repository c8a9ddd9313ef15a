/*
 * NAME
 *	input - buffered reading of the caller's standard input
 * DESCRIPTION
 *	One reader serves both ways outbox takes a message: sendmail's
 *	stdin (the whole input is the message) and the -bs dialogue (SMTP
 *	commands and DATA share the stream). input_getc() is inline-fast
 *	for the body loop; input_line() reads one line into a bounded
 *	buffer, accepting CRLF, LF or a lone CR as its end.
 */
#ifndef OUTBOX_INPUT_H
#define OUTBOX_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct input {
	int fd;
	size_t pos;
	size_t len;
	bool eof;
	unsigned long lineno;	/* lines read so far, for messages */
	char buf[65536];
};

enum input_line { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_NUL };

void input_init(struct input *, int fd);
bool input_fill(struct input *);
bool input_pending(const struct input *);
enum input_line input_line(struct input *, struct buf *);

/* input_getc - next byte, or -1 at end of input */
static inline int input_getc(struct input *in)
{
	if (in->pos == in->len && !input_fill(in))
		return -1;
	return (unsigned char)in->buf[in->pos++];
}

/* input_peek - next byte without taking it, or -1 */
static inline int input_peek(struct input *in)
{
	if (in->pos == in->len && !input_fill(in))
		return -1;
	return (unsigned char)in->buf[in->pos];
}

#endif
