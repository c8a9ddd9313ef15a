/*
 * NAME
 *	addr - mail addresses: lists, validation, qualification
 * DESCRIPTION
 *	See addr.h. The list parser is one pass over the text with a small
 *	lexical state (quoted string, comment depth, angle bracket); each
 *	top-level ',' or ';' ends a mailbox and a top-level ':' turns what
 *	came before it into a group name.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "message/addr.h"
#include "util/buf.h"
#include "util/sys.h"

struct addr_lex {
	struct buf plain;	/* mailbox text outside comments and angles */
	struct buf angle;	/* text inside the last <...> */
	bool had_angle;
};

/* addr_route_strip - "@a,@b:user@c" -> "user@c" (RFC 5321 source route) */
static const char *addr_route_strip(const char *s)
{
	const char *colon;

	if (s[0] != '@')
		return s;
	colon = strchr(s, ':');
	return colon ? colon + 1 : s;
}

/* addr_trim - strip surrounding white space (and line breaks) in place */
static char *addr_trim(struct buf *b)
{
	char *s = b->data ? b->data : "";
	size_t n = b->len;

	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (b->data)
		s[n] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* addr_emit - end of one mailbox: keep its addr-spec if any; white space
 * inside it is kept, so that the envelope check refuses it */
static void addr_emit(struct addr_lex *lx, struct strlist *out)
{
	const char *spec = addr_trim(lx->had_angle ? &lx->angle : &lx->plain);

	spec = addr_route_strip(spec);
	if (*spec)
		strlist_add(out, spec);
	buf_reset(&lx->plain);
	buf_reset(&lx->angle);
	lx->had_angle = false;
}

/* addr_skip_comment - index just past the (possibly nested) comment at i */
static size_t addr_skip_comment(const char *t, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		if (t[i] == '\\' && i + 1 < len)
			i++;
		else if (t[i] == '(')
			depth++;
		else if (t[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

/* addr_copy_literal - copy a [domain literal] at i, return index past it */
static size_t addr_copy_literal(const char *t, size_t len, size_t i,
				struct buf *b)
{
	for (; i < len; i++) {
		buf_putc(b, t[i]);
		if (t[i] == ']')
			return i + 1;
	}
	return len;
}

/* addr_copy_quoted - copy "..." at i into b, return index past it */
static size_t addr_copy_quoted(const char *t, size_t len, size_t i,
			       struct buf *b)
{
	buf_putc(b, t[i++]);
	for (; i < len; i++) {
		buf_putc(b, t[i]);
		if (t[i] == '\\' && i + 1 < len)
			buf_putc(b, t[++i]);
		else if (t[i] == '"')
			return i + 1;
	}
	return len;
}

/* addr_parse_list - append the addr-specs found in text to out */
void addr_parse_list(const char *t, size_t len, struct strlist *out)
{
	struct addr_lex lx = { BUF_INIT(4096), BUF_INIT(4096), false };
	bool in_angle = false;
	size_t i = 0;

	while (i < len) {
		char c = t[i];
		struct buf *dst = in_angle ? &lx.angle : &lx.plain;

		if (c == '(') {
			i = addr_skip_comment(t, len, i);
		} else if (c == '"') {
			i = addr_copy_quoted(t, len, i, dst);
		} else if (c == '[') {
			i = addr_copy_literal(t, len, i, dst);
		} else if (c == '<' && !in_angle) {
			in_angle = true;
			lx.had_angle = true;
			buf_reset(&lx.angle);
			i++;
		} else if (c == '>' && in_angle) {
			in_angle = false;
			i++;
		} else if (!in_angle && (c == ',' || c == ';')) {
			addr_emit(&lx, out);
			i++;
		} else if (!in_angle && c == ':' && !lx.had_angle) {
			/* group name: forget it, the members follow */
			buf_reset(&lx.plain);
			i++;
		} else {
			buf_putc(dst, c);
			i++;
		}
	}
	addr_emit(&lx, out);
	buf_free(&lx.plain);
	buf_free(&lx.angle);
}

/* addr_check_envelope - NULL if addr may be sent, else what is wrong */
const char *addr_check_envelope(const char *addr)
{
	size_t len = strlen(addr);

	if (len == 0)
		return "empty address";
	if (len > ADDR_MAX)
		return "address too long";
	for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
		if (*p == '\r' || *p == '\n')
			return "line break in address";
		if (*p < 0x20 || *p == 0x7f)
			return "control character in address";
		if (*p == ' ' || *p == '\t')
			return "space in address";
		if (*p == '<' || *p == '>')
			return "angle bracket in address";
	}
	if (addr[0] == '@' || addr[len - 1] == '@')
		return "address has an empty part";
	return NULL;
}

/* addr_qualify - a copy of addr, with "@domain" added to a bare name */
char *addr_qualify(const char *addr, const char *domain)
{
	struct buf b = BUF_INIT(strlen(addr) +
				(domain ? strlen(domain) : 0) + 1);

	buf_puts(&b, addr);
	if (strchr(addr, '@') == NULL && domain && *domain) {
		buf_putc(&b, '@');
		buf_puts(&b, domain);
	}
	return buf_steal(&b);
}

/* addr_check_domain - 0 if domain is a plausible host name */
int addr_check_domain(const char *d)
{
	size_t len = strlen(d);

	if (len == 0 || len > 253 || d[0] == '.' || d[0] == '-')
		return -1;
	for (const unsigned char *p = (const unsigned char *)d; *p; p++)
		if (!isalnum(*p) && *p != '.' && *p != '-' && *p < 0x80)
			return -1;
	return 0;
}

/* addr_local - an address of this host: no domain, or the host's own */
bool addr_local(const char *addr)
{
	const char *at = strrchr(addr, '@');
	const char *fqdn = sys_fqdn();
	size_t short_len = strcspn(fqdn, ".");

	if (at == NULL)
		return true;
	at++;
	return strcasecmp(at, "localhost") == 0 ||
	    strcasecmp(at, "localhost.localdomain") == 0 ||
	    strcasecmp(at, fqdn) == 0 ||
	    (strlen(at) == short_len && strncasecmp(at, fqdn, short_len) == 0);
}
