/*
 * NAME
 *	utf8 - is this well-formed UTF-8
 * SYNOPSIS
 *	#include "util/utf8.h"
 *
 *	size_t utf8_len(const unsigned char *p, size_t avail);
 * DESCRIPTION
 *	utf8_len() returns the length of the well-formed UTF-8 sequence
 *	that starts at p, looking at no more than avail bytes: 1 for
 *	ASCII, 2 to 4 otherwise, and 0 when there is none (a stray
 *	continuation byte, a truncated sequence, an overlong form, a
 *	surrogate or a code point above U+10FFFF). Used wherever outbox
 *	writes JSON (mailq --json) or checks it (the OAuth2 reply).
 */
#ifndef OUTBOX_UTF8_H
#define OUTBOX_UTF8_H

#include <stddef.h>

size_t utf8_len(const unsigned char *p, size_t avail);

#endif
