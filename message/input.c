/*
 * NAME
 *	input - buffered reading of the caller's standard input
 */
#include <errno.h>
#include <sysexits.h>
#include <unistd.h>

#include "message/input.h"
#include "util/log.h"

/* input_init - read from fd */
void input_init(struct input *in, int fd)
{
	in->fd = fd;
	in->pos = in->len = 0;
	in->eof = false;
	in->lineno = 0;
}

/* input_fill - refill the buffer; false at end of input */
bool input_fill(struct input *in)
{
	ssize_t n;

	if (in->eof)
		return false;
	do
		n = read(in->fd, in->buf, sizeof(in->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		log_die(EX_IOERR, "cannot read the input: %m; nothing was "
			"queued");
	in->pos = 0;
	in->len = (size_t)n;
	in->eof = n == 0;
	return n > 0;
}

/* input_pending - are bytes already buffered (pipelined input) */
bool input_pending(const struct input *in)
{
	return in->pos < in->len;
}

/* input_line - one line without its ending; the rest of an overlong
 * line is consumed and LINE_TOO_LONG returned */
enum input_line input_line(struct input *in, struct buf *line)
{
	enum input_line rc = LINE_OK;
	int c;

	buf_reset(line);
	if (input_peek(in) < 0)
		return LINE_EOF;
	in->lineno++;
	while ((c = input_getc(in)) >= 0) {
		if (c == '\n')
			break;
		if (c == '\r') {
			if (input_peek(in) == '\n')
				input_getc(in);
			break;
		}
		if (c == '\0' && rc == LINE_OK)
			rc = LINE_NUL;
		if (buf_putc(line, (char)c) < 0)
			rc = LINE_TOO_LONG;
	}
	return rc;
}
