/*
 * NAME
 *	addr - mail addresses: lists, validation, qualification
 * SYNOPSIS
 *	#include "message/addr.h"
 * DESCRIPTION
 *	addr_parse_list() extracts the addr-specs of an RFC 5322
 *	address-list ("Name <a@b>, c@d (comment), group: e@f;") as found in
 *	To/Cc/Bcc headers and in sendmail's recipient arguments. Display
 *	names, comments and group names are dropped; angle brackets and
 *	source routes are removed. Malformed input yields what can be
 *	recovered; the envelope check below has the last word.
 *
 *	addr_check_envelope() decides whether a string may go on the wire
 *	in MAIL FROM or RCPT TO: libcurl and the SMTP client pass it
 *	through raw, so CR, LF, NUL, controls, space, '<' and '>' are
 *	refused here, once, before anything is spooled.
 */
#ifndef OUTBOX_ADDR_H
#define OUTBOX_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strlist.h"

#define ADDR_MAX 320	/* 64 local + @ + 255 domain */

void addr_parse_list(const char *text, size_t len, struct strlist *out);
const char *addr_check_envelope(const char *addr);
char *addr_qualify(const char *addr, const char *domain);
int addr_check_domain(const char *domain);
bool addr_local(const char *addr);

#endif
