"""A programmable loopback SMTP relay for the outbox integration tests.

Built on aiosmtpd (Debian's python3-aiosmtpd 1.4.3); its Controller runs
the asyncio loop in a background thread, so the relay can be driven from
plain synchronous pytest code.

    from relay import Relay
    with Relay(certdir) as r:            # STARTTLS + AUTH required
        ... point the client at 127.0.0.1:r.port ...
        r.wait_for(1)
        assert r.messages[0]['data'] == b'...'

Constructor arguments (all keyword-friendly):

  certdir        directory made by certs.make_certs() (created if needed)
  host="127.0.0.1"
                 address to listen on, e.g. "::1" for IPv6 (also in .host)
  port=0         0 picks a free port; the real one is in .port
  starttls=True  offer STARTTLS and require it before anything but
                 EHLO/NOOP/QUIT/STARTTLS ("530 Must issue a STARTTLS
                 command first"); AUTH is only offered after TLS
  implicit_tls=False
                 TLS from the first byte (SMTPS, like port 465); no
                 STARTTLS is offered then. Exclusive with starttls=True
                 (pass starttls=False too, or let implicit_tls win: it
                 does, starttls is ignored when implicit_tls is set).
                 With neither, the relay speaks plain SMTP and does not
                 advertise STARTTLS.
  cert='server'  which pair the relay presents: 'server' (CA-signed,
                 localhost/127.0.0.1/::1), 'wrong' (CA-signed, only
                 DNS:wrong.example) or 'selfsigned' (not CA-signed)
  auth=True      AUTH is REQUIRED before MAIL ("530 5.7.0
                 Authentication required").  auth=False: AUTH is still
                 offered (after TLS) and checked if a client uses it,
                 but it is optional.
  users={'alice': 's3cret'}
                 accepted credentials; a wrong login -> "535 5.7.8"
  offer_auth=True
                 offer_auth=False: AUTH is not advertised in EHLO, is
                 not required, and an AUTH command gets "502 5.5.1".
  rcpt_rules=None
                 {key: reply}.  A key without wildcard characters is
                 compared with the whole recipient address, case-
                 insensitively.  A key containing *, ? or [ is an
                 fnmatch pattern (case-insensitive) tried against the
                 whole address AND against its local part, so
                 'reject*' matches reject-me@example.com.  Exact keys
                 win over patterns; among patterns the first in dict
                 order wins.  Unmatched recipients get "250 OK".
                 Example: {'nobody@example.com': '550 5.1.1 No such user',
                           'later*': '451 4.3.0 Try later'}
  data_reply=None
                 the reply after the final dot, e.g. '554 5.7.1 Rejected'
                 or '451 4.3.0 Try again'.  A 2xx data_reply is sent
                 instead of "250 OK" and the message is recorded; any
                 other reply means the message is NOT recorded.
  record_dir=None
                 also write each accepted message as record_dir/N.eml
                 (the raw bytes) and N.json (the envelope), N = 1, 2, ..
  on_message=None
                 callable(msg_dict) run (in the relay's thread) for every
                 accepted message; script mode uses it to print.
  dsn=False      dsn=True: advertise DSN (RFC 3461) in EHLO and accept
                 RET=FULL|HDRS and ENVID=<xtext> on MAIL, NOTIFY=NEVER or
                 NOTIFY=<SUCCESS,FAILURE,DELAY list> and
                 ORCPT=<addr-type>;<xtext> on RCPT.  A bad value or a
                 parameter given twice gets aiosmtpd's "501 Syntax: ..."
                 reply; other unknown parameters still get 555.  xtext is
                 checked as RFC 3461 writes it: "+" needs two UPPER-case
                 hex digits ("+2b" is refused; Postfix is laxer).  The MAIL
                 and RCPT line limits grow by 110 and 500 octets
                 (RFC 3461 section 4).  dsn=False (the default): as
                 before, any DSN parameter gets "555 ... not recognized".
  mechanisms=None
                 AUTH mechanisms to advertise and accept, in the order
                 EHLO lists them, from PLAIN, LOGIN, CRAM-MD5, XOAUTH2,
                 OAUTHBEARER, EXTERNAL; others get "504 5.5.4".  None:
                 aiosmtpd's PLAIN and LOGIN ("AUTH LOGIN PLAIN").
                   PLAIN, LOGIN  checked against users.
                   CRAM-MD5      RFC 2195: a fresh <random.time@relay.test>
                                 challenge, the answer's HMAC-MD5 checked
                                 with the users password.
                   XOAUTH2       Google's: base64 "user=U^Aauth=Bearer T^A^A"
                                 (initial response or after an empty 334).
                                 A bad token gets 334 + base64 JSON
                                 {"status":"401","schemes":"bearer",...},
                                 then, whatever the client answers (an
                                 empty line), "535 5.7.8".
                   OAUTHBEARER   RFC 7628: "n,a=U,^Ahost=H^Aport=P^A
                                 auth=Bearer T^A^A"; a= may be left out.
                                 A bad token: 334 + base64 JSON
                                 {"status":"invalid_token",...}, the
                                 client's answer ("AQ=="), "535 5.7.8".
                   EXTERNAL      RFC 4422: succeeds only when the TLS client
                                 sent a certificate the test CA verified
                                 (see client_cert); the authorization
                                 identity must be empty ("AUTH EXTERNAL ="),
                                 "=" or the certificate's CN, which is the
                                 user recorded.  No certificate:
                                 "535 5.7.8 No client certificate".
                 With XOAUTH2 or OAUTHBEARER offered, AUTH lines and
                 challenge answers may be 12288 octets long (RFC 4954).
  tokens=None    the valid bearer tokens for XOAUTH2/OAUTHBEARER: a dict
                 {user: token}, or a callable(user, token) -> bool (user is
                 None for an OAUTHBEARER without a=), e.g. an
                 oauth.TokenServer's valid_token.  A dict finds the user by
                 the token when the client names none.
  client_cert=None
                 'optional' or 'required': the TLS handshake (STARTTLS or
                 implicit) asks for a client certificate, verified against
                 the test CA only (certs' client.pem is one).  A certificate
                 that does not verify fails the handshake; with 'required'
                 so does having none.  Needs starttls or implicit_tls.
  close_after=None
                 N: once N messages were accepted on a connection, its next
                 command other than QUIT (normally the next MAIL) gets
                 "421 4.4.2 closing, idle" and the relay closes the
                 connection: a relay that drops a reused connection.  QUIT
                 still gets "221".  0 refuses the first command (EHLO).
  idle_close=None
                 seconds: a connection that sends no command for this long
                 gets "421 4.4.2 closing, idle" and is closed (aiosmtpd's
                 idle timeout, 300 s without the 421 when None).

What it records (all thread-safe; read them after the client is done or
after wait_for()):

  .messages     list of dicts, one per accepted message, in order:
                  mail_from     str, '' for the null sender <>
                  rcpt_tos      [str] accepted recipients only
                  data          bytes exactly as received after dot-
                                unstuffing (CRLF line ends kept; the
                                final ".\r\n" is not included)
                  mail_options  [str] MAIL parameters in the order sent,
                                upper-cased by aiosmtpd, e.g.
                                ['BODY=8BITMIME', 'SIZE=12']; with dsn=True
                                the values of ENVID (and ORCPT) keep their
                                case as sent: ['RET=HDRS', 'ENVID=Ab+2Bc']
                  rcpt_options  [[str]] parallel to rcpt_tos: the RCPT
                                parameters of each accepted recipient
                                ([] when none), e.g. with dsn=True
                                [['NOTIFY=SUCCESS,FAILURE',
                                  'ORCPT=rfc822;Bob@example.org'], []]
                  auth_user     login name (str) or None; the
                                certificate's CN after AUTH EXTERNAL
                  auth_mech     the AUTH mechanism that succeeded
                                ('PLAIN', 'CRAM-MD5', ...) or None
                  tls           True if the session was under TLS
                                (STARTTLS or implicit)
                  client_cn     CN of the verified TLS client certificate,
                                or None (see client_cert)
                  tls_resumed   True if the TLS session was a resumed one
                  peer          the client's address (str), e.g.
                                '127.0.0.2' or '::1'
  .connections  TCP connections accepted (counted at accept time, so a
                client that fails the TLS handshake still counts)
  .peers        [(host, port)] of every connection, as accepted (also
                those that fail the TLS handshake), in order
  .open_connections
                connections open right now: from accept until the
                relay reads the client's QUIT (a client that waits for
                the 221, as outbox does, is done with it) or the socket
                closes, whichever comes first.  Ending at QUIT keeps the
                count exact: a client that got its 221 and then opened
                a new connection is never seen with two, however late
                the relay's event loop gets to the old socket's close
  .max_concurrent
                the most connections that were open at the same time
  .auth_mechs   [str] the mechanism of every successful AUTH, in order
                (noted before the 235 is sent)
  .commands     every SMTP command line received, as str without CRLF,
                exactly as sent (verb case included: smtplib sends
                "mail FROM:<..>"), in arrival order across all
                connections.  AUTH initial
                responses are redacted ('AUTH PLAIN <redacted>'); the
                lines answering 334 challenges and the DATA content are
                not command lines and are not recorded.
  .clear()      forget messages, commands, peers, auth_mechs and the
                connection count; max_concurrent restarts from the
                connections open now.
  .wait_for(n, timeout=5)
                block until at least n messages are recorded; raises
                TimeoutError otherwise.  Returns the messages list.

Run as a script (for "make demo"):

  /usr/bin/python3 tests/relay.py --certdir D [--port N] [--no-starttls]
      [--implicit-tls] [--no-auth] [--user alice --password s3cret]
      [--record-dir DIR] [--cert server|wrong|selfsigned]
      [--rcpt-rule ADDR=REPLY ...] [--data-reply REPLY] [--dsn]
      [--host ADDR] [--mechanisms M1,M2 [--token USER=TOKEN ...]]
      [--client-cert optional|required] [--close-after N]
      [--idle-close SECONDS]

It prints "listening HOST PORT" (flushed) once ready, then for each
accepted message one envelope line followed by the raw content, and runs
until SIGTERM or SIGINT.  With --mechanisms the envelope line has
" mech=<mechanism or ->" after size=; with --dsn it ends with
" mail_options=<JSON list> rcpt_options=<JSON list of lists>".
"""

import argparse
import asyncio
import base64
import binascii
import collections
import fnmatch
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, TLSSetupException, auth_mechanism

# certs.py lives next to this file; make that importable in script mode
# as well as under pytest.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from certs import make_certs  # noqa: E402

HOST = "127.0.0.1"
# Used in the banner and EHLO reply.  Passing it explicitly also avoids
# aiosmtpd's default socket.getfqdn(), which may try DNS.
SERVER_NAME = "relay.test"

# The AUTH mechanisms Relay(mechanisms=...) can offer, and aiosmtpd's own
# (the default).
MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", "EXTERNAL")
DEFAULT_MECHANISMS = ("PLAIN", "LOGIN")
# Bearer tokens can be long (Microsoft's are JWTs of a few KB): with these
# offered, an AUTH line (and a challenge answer) may be as long as RFC 4954
# section 4 allows, instead of aiosmtpd's 512 (1001 for the answer).
_OAUTH_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
AUTH_LINE_LIMIT = 12288
# close_after and idle_close.
CLOSE_REPLY = "421 4.4.2 closing, idle"

log = logging.getLogger("outbox.relay")


def _drop_login_data_warning(record):
    # aiosmtpd 1.4.3 itself assigns the deprecated Session.login_data after
    # every successful AUTH, which logs a useless warning each time.
    return "login_data is deprecated" not in record.getMessage()


def _drop_verify_mode_warning(record):
    # client_cert='required' with STARTTLS is on purpose: aiosmtpd warns
    # about it at every connection.
    return "tls_context.verify_mode not in" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_drop_login_data_warning)
logging.getLogger("mail.log").addFilter(_drop_verify_mode_warning)


class _RecordingReader(asyncio.StreamReader):
    """StreamReader that reports SMTP command lines to its relay.

    aiosmtpd reads command lines with readuntil() and the default b'\\n'
    separator, DATA content with readuntil(b'\\r\\n') and AUTH challenge
    answers with readline().  readline() calls readuntil(b'\\n') itself,
    so it is told apart with a flag; what is left of readuntil() with the
    default separator is exactly the command lines.  The reader that
    aiosmtpd creates is switched to this class in
    _RelaySMTP._client_connected_cb().
    """

    _relay = None
    _in_readline = False

    async def readline(self):
        self._in_readline = True
        try:
            return await super().readline()
        finally:
            self._in_readline = False

    async def readuntil(self, separator=b"\n"):
        line = await super().readuntil(separator)
        if separator == b"\n" and not self._in_readline and self._relay is not None:
            self._relay._note_command(line)
        return line


# -- SASL helpers for Relay(mechanisms=...) --------------------------------------

def _b64json(obj):
    """The base64 of compact JSON, for an OAuth error challenge."""
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def _kvpairs(text):
    """'k1=v1\\x01k2=v2\\x01\\x01' (the XOAUTH2 message, the end of an
    OAUTHBEARER one) as a dict, or None if it is not of that form."""
    if not text.endswith("\x01\x01"):
        return None
    out = {}
    for pair in text[:-2].split("\x01"):
        key, eq, value = pair.partition("=")
        if not eq or not key or key in out:
            return None
        out[key] = value
    return out


def _bearer(value):
    """The token of an "auth=Bearer TOKEN" value, or None."""
    scheme, _, token = (value or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _parse_xoauth2(blob):
    """Google's XOAUTH2 initial response "user=U^Aauth=Bearer T^A^A"
    (decoded) -> (user, token), or None if malformed."""
    kv = _kvpairs(blob.decode("utf-8", errors="replace"))
    if kv is None or not kv.get("user") or _bearer(kv.get("auth")) is None:
        return None
    return kv["user"], _bearer(kv["auth"])


def _parse_oauthbearer(blob):
    """RFC 7628 "n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A" (decoded)
    -> (user or None when there is no a=, token), or None if malformed."""
    text = blob.decode("utf-8", errors="replace")
    gs2, sep, rest = text.partition("\x01")
    parts = gs2.split(",")
    if not sep or len(parts) != 3 or parts[2] != "":
        return None
    if parts[0] not in ("n", "y") and not parts[0].startswith("p="):
        return None
    user = None
    if parts[1]:
        if not parts[1].startswith("a=") or len(parts[1]) < 3:
            return None
        # saslname (RFC 5801 4): "," and "=" are sent as =2C and =3D.
        user = parts[1][2:].replace("=2C", ",").replace("=3D", "=")
    kv = _kvpairs(rest)
    token = _bearer(kv.get("auth")) if kv is not None else None
    if token is None:
        return None
    return user, token


# -- DSN (RFC 3461) parameters, used only with Relay(dsn=True) ----------------

DSN_PARAMS = {"MAIL": ("RET", "ENVID"), "RCPT": ("NOTIFY", "ORCPT")}
# Parameters whose value is recorded with its case as sent (xtext is
# case-sensitive); other values are upper-cased, as aiosmtpd does.
_DSN_KEEP_CASE = ("ENVID", "ORCPT")


def _xtext_ok(v):
    """RFC 3461 4: "!".."~" except "+" and "=", or "+" and two upper-case
    hex digits."""
    i = 0
    while i < len(v):
        c = v[i]
        if c == "+":
            if len(v) < i + 3 or any(h not in "0123456789ABCDEF" for h in v[i + 1:i + 3]):
                return False
            i += 3
            continue
        if not "!" <= c <= "~" or c == "=":
            return False
        i += 1
    return True


def _dsn_value_ok(key, value):
    """Whether a DSN parameter's value (as sent) is well-formed."""
    if key == "RET":
        return value.upper() in ("FULL", "HDRS")
    if key == "ENVID":
        return 0 < len(value) <= 100 and _xtext_ok(value)
    if key == "NOTIFY":
        words = value.upper().split(",")
        # NEVER stands alone (RFC 3461 4.1); a repeated word is allowed.
        return words == ["NEVER"] or all(w in ("SUCCESS", "FAILURE", "DELAY")
                                         for w in words)
    if key == "ORCPT":
        addr_type, semi, addr = value.partition(";")
        return (bool(semi) and addr_type.isascii() and addr_type.replace("-", "").isalnum()
                and len(value) <= 500 and bool(addr) and _xtext_ok(addr))
    return False


def _raw_params(server, arg, keyword):
    """The parameter words after the address of "MAIL FROM:<a> P1 P2" as
    sent (aiosmtpd keeps only an upper-cased copy), or None."""
    if arg is None:
        return None
    arg = server._strip_command_keyword(keyword, arg)
    if arg is None:
        return None
    address, rest = server._getaddr(arg)
    if address is None:
        return None
    return rest.split()


def _same_help(parent):
    """Give an overriding smtp_* method the parent's HELP syntax text."""
    def copy(f):
        for a in ("__smtp_syntax__", "__smtp_syntax_extended__", "__smtp_syntax_when__"):
            if hasattr(parent, a):
                setattr(f, a, getattr(parent, a))
        return f
    return copy


class _RelaySMTP(SMTP):
    """aiosmtpd's SMTP protocol, one instance per connection, plus:

    - command recording (see _RecordingReader);
    - implicit TLS: aiosmtpd only considers STARTTLS sessions secure for
      AUTH (auth_require_tls looks at its STARTTLS state), so on a
      connection that is TLS from the start we lift that check;
    - offer_auth=False: AUTH is refused (EHLO hiding is the handler's
      handle_EHLO hook);
    - dsn=True: MAIL and RCPT accept the RFC 3461 parameters.  aiosmtpd
      1.4.3 refuses every parameter it does not know with 555 after
      _getparams(); _getparams() here takes the DSN ones out of its
      result once they are checked, and smtp_MAIL/smtp_RCPT remember the
      parameter words as sent so their case survives in the record;
    - the AUTH mechanisms CRAM-MD5, XOAUTH2, OAUTHBEARER and EXTERNAL
      (auth_* methods, named with aiosmtpd's @auth_mechanism; Relay
      removes those it does not offer with auth_exclude_mechanism);
    - close_after: every smtp_* method but QUIT is wrapped so that once
      the connection has had its messages, the next command gets 421;
    - idle_close: aiosmtpd's timeout, with a 421 before the close.
    """

    def __init__(self, handler, *, relay, **kwargs):
        super().__init__(handler, **kwargs)
        self._relay = relay
        self._params_verb = None    # "MAIL"/"RCPT" while one is parsed
        self._params_raw = None     # its parameter words as sent
        self.accepted = 0           # messages accepted on this connection
        if relay.dsn or relay.long_auth:
            # aiosmtpd keeps these limits in a dict shared by the class
            # (and grows it at every EHLO); give this connection its own
            # (with DSN, set again in dsn_ehlo()).
            self.command_size_limits = self._own_limits()
        if relay.close_after is not None:
            for verb, method in list(self._smtp_methods.items()):
                if verb != "QUIT":
                    self._smtp_methods[verb] = self._closing(method)

    def _own_limits(self):
        """A fresh command line limit dict for this connection."""
        limits = collections.defaultdict(lambda x=self.command_size_limit: x)
        if self._relay.long_auth:
            limits["AUTH"] = AUTH_LINE_LIMIT
        return limits

    def _closing(self, method):
        """method (an smtp_* one), or "421 4.4.2 closing, idle" and the end
        of the connection once close_after messages were accepted on it."""
        async def run(arg):
            if self.accepted < self._relay.close_after:
                return await method(arg)
            await self.push(CLOSE_REPLY)
            # As aiosmtpd's QUIT does: the queued reply is still sent.
            self._handler_coroutine.cancel()
            self.transport.close()
        return _same_help(method)(run)

    def _timeout_cb(self):
        writer = getattr(self, "_writer", None)
        if self._relay.idle_close is not None and writer is not None:
            writer.write(CLOSE_REPLY.encode("ascii") + b"\r\n")
        super()._timeout_cb()

    def dsn_ehlo(self):
        """EHLO with dsn=True: the MAIL/RCPT line limits of RFC 3461 4."""
        limits = self._own_limits()
        limits["MAIL"] = (self.command_size_limit + 110
                          + (26 if self.data_size_limit else 0)
                          + (10 if self.enable_SMTPUTF8 else 0))
        limits["RCPT"] = self.command_size_limit + 500
        self.command_size_limits = limits

    def recorded_params(self, upper):
        """The parameter list to record for the MAIL/RCPT being handled,
        given aiosmtpd's upper-cased list."""
        raw = self._params_raw
        if not self._relay.dsn or raw is None or len(raw) != len(upper):
            return list(upper)
        out = []
        for up, sent in zip(upper, raw):
            key, eq, value = sent.partition("=")
            if eq and key.upper() in _DSN_KEEP_CASE:
                out.append(key.upper() + "=" + value)
            else:
                out.append(up)
        return out

    def _getparams(self, params):
        result = super()._getparams(params)
        verb = self._params_verb
        if result is None or not self._relay.dsn or verb is None:
            return result
        raw = self._params_raw or []
        for key in DSN_PARAMS[verb]:
            if key not in result:
                continue
            sent = [w.partition("=") for w in raw
                    if w.partition("=")[0].upper() == key]
            # Each at most once (RFC 3461 4.1), and with a good value.
            if (len(sent) != 1 or not sent[0][1]
                    or not _dsn_value_ok(key, sent[0][2])):
                return None             # aiosmtpd: "501 Syntax: ..."
            del result[key]
        return result

    @_same_help(SMTP.smtp_QUIT)
    async def smtp_QUIT(self, arg):
        if not arg:
            self._relay._note_done(tuple(self.session.peer))
        return await super().smtp_QUIT(arg)

    @_same_help(SMTP.smtp_MAIL)
    async def smtp_MAIL(self, arg):
        if not self._relay.dsn:
            return await super().smtp_MAIL(arg)
        had_sender = bool(self.envelope.mail_from)
        self._params_verb = "MAIL"
        self._params_raw = _raw_params(self, arg, "FROM:")
        try:
            await super().smtp_MAIL(arg)
            if not had_sender and self.envelope.mail_from:
                # aiosmtpd recorded its upper-cased list (no MAIL hook).
                self.envelope.mail_options[:] = self.recorded_params(
                    self.envelope.mail_options)
        finally:
            self._params_verb = self._params_raw = None

    @_same_help(SMTP.smtp_RCPT)
    async def smtp_RCPT(self, arg):
        if not self._relay.dsn:
            return await super().smtp_RCPT(arg)
        self._params_verb = "RCPT"
        self._params_raw = _raw_params(self, arg, "TO:")
        try:
            await super().smtp_RCPT(arg)
        finally:
            self._params_verb = self._params_raw = None

    def _client_connected_cb(self, reader, writer):
        super()._client_connected_cb(reader, writer)
        reader.__class__ = _RecordingReader
        reader._relay = self._relay
        if self._relay.long_auth:
            # A longer line for the reader (aiosmtpd's is 1001); command
            # lines stay checked against command_size_limits and DATA
            # lines against line_length_limit.
            reader._limit = max(reader._limit, AUTH_LINE_LIMIT + 2)

    def connection_made(self, transport):
        # aiosmtpd calls connection_made() a second time after STARTTLS.
        first_time = self._original_transport is None and self.transport is None
        super().connection_made(transport)
        if first_time and transport.get_extra_info("ssl_object") is not None:
            # Implicit TLS: the whole session is encrypted.  Setting this
            # after __init__ also avoids aiosmtpd's "AUTH without TLS"
            # warning, which does not apply here.
            self._auth_require_tls = False

    @property
    def is_tls(self):
        """True once the session is encrypted (STARTTLS or implicit)."""
        return (self.transport is not None
                and self.transport.get_extra_info("ssl_object") is not None)

    @property
    def tls_resumed(self):
        """True if the client resumed an earlier TLS session."""
        tls = self.transport.get_extra_info("ssl_object") if self.transport else None
        return bool(tls is not None and tls.session_reused)

    @property
    def client_cn(self):
        """The CN of the client certificate verified in the TLS
        handshake, or None (no TLS, no certificate asked for or given)."""
        tls = self.transport.get_extra_info("ssl_object") if self.transport else None
        cert = tls.getpeercert() if tls is not None else None
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None

    async def smtp_AUTH(self, arg):
        if not self._relay.offer_auth:
            await self.push("502 5.5.1 AUTH not supported")
            return
        await super().smtp_AUTH(arg)

    # -- the extra AUTH mechanisms (aiosmtpd calls them as
    #    method(server, args), args = ["MECH"] or ["MECH", initial]) --

    async def _initial_response(self, args):
        """The decoded initial response of "AUTH MECH [IR]" ("=" is an
        empty one, RFC 4954 4), or when there is none the answer to an
        empty 334 challenge.  MISSING when the client cancelled or sent
        bad base64 (the 501 is sent then)."""
        if len(args) == 1:
            return await self.challenge_auth("")
        if args[1] == "=":
            return b""
        try:
            return base64.b64decode(args[1], validate=True)
        except binascii.Error:
            await self.push("501 5.5.2 Can't decode base64")
            return MISSING

    async def _oauth_failure(self, error):
        """The OAuth failure dance of XOAUTH2 and OAUTHBEARER: a 334 with
        the base64 JSON error, the client's answer (an empty line, or
        "AQ==" for OAUTHBEARER; whatever it is), then 535."""
        await self.push("334 " + _b64json(error))
        await self._reader.readline()
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not accepted")

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, _, args):
        # RFC 2195: the server speaks first, with a unique challenge; the
        # answer is "user HEX(HMAC-MD5(password, challenge))".
        if len(args) > 1:
            await self.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = "<%d.%d@%s>" % (secrets.randbits(63), time.time_ns(), SERVER_NAME)
        answer = await self.challenge_auth(challenge)
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        login, _, digest = answer.decode("utf-8", errors="replace").rpartition(" ")
        password = self._relay.users.get(login)
        if login and password is not None:
            want = hmac.new(password.encode("utf-8"), challenge.encode("ascii"),
                            "md5").hexdigest()
            if hmac.compare_digest(digest.lower(), want):
                return self._relay._auth_ok(self.session, "CRAM-MD5", login)
        return AuthResult(success=False, handled=False)

    @auth_mechanism("XOAUTH2")
    async def auth_XOAUTH2(self, _, args):
        blob = await self._initial_response(args)
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        parsed = _parse_xoauth2(blob)
        if parsed is None:
            await self.push("501 5.5.2 Malformed XOAUTH2 response")
            return AuthResult(success=False, handled=True)
        user = self._relay._check_token(*parsed)
        if user is not None:
            return self._relay._auth_ok(self.session, "XOAUTH2", user)
        return await self._oauth_failure(
            {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})

    @auth_mechanism("OAUTHBEARER")
    async def auth_OAUTHBEARER(self, _, args):
        blob = await self._initial_response(args)
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        parsed = _parse_oauthbearer(blob)
        if parsed is None:
            await self.push("501 5.5.2 Malformed OAUTHBEARER response")
            return AuthResult(success=False, handled=True)
        user = self._relay._check_token(*parsed)
        if user is not None:
            return self._relay._auth_ok(self.session, "OAUTHBEARER", user)
        return await self._oauth_failure(
            {"status": "invalid_token", "schemes": "bearer", "scope": "mail"})

    @auth_mechanism("EXTERNAL")
    async def auth_EXTERNAL(self, _, args):
        # RFC 4422 appendix A: the identity is the verified client
        # certificate's; the optional authorization identity must be
        # empty (or "=") or that same name.
        blob = await self._initial_response(args)
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        authzid = blob.decode("utf-8", errors="replace")
        cn = self.client_cn
        if cn is None:
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 No client certificate")
        if authzid in ("", "=", cn):
            return self._relay._auth_ok(self.session, "EXTERNAL", cn)
        return AuthResult(success=False, handled=False)


class _ConnSocket(socket.socket):
    """An accepted connection's socket: tells its relay when it is closed.
    asyncio closes it when the connection ends, however it ends (also
    after a failed implicit TLS handshake, when the SMTP protocol never
    hears of the connection)."""

    _relay = None

    _peer = None

    def close(self):
        relay, self._relay = self._relay, None
        super().close()
        if relay is not None:
            relay._note_done(self._peer)


class _ListenSocket(socket.socket):
    """The relay's listening socket: asyncio's accept loop calls its
    accept(), which notes the peer and hands out a _ConnSocket."""

    _relay = None

    def accept(self):
        conn, addr = super().accept()
        relay = self._relay
        if relay is None or relay._warming:
            return conn, addr       # the Controller's own start-up probe
        conn = _ConnSocket(conn.family, conn.type, conn.proto, fileno=conn.detach())
        conn._relay = relay
        conn._peer = tuple(addr)
        relay._note_accept(conn._peer)
        return conn, addr


class _RelayController(Controller):
    """Controller that builds _RelaySMTP, counts connections, listens on
    an IPv4 or IPv6 address and learns the real port when asked to bind
    port 0."""

    def __init__(self, relay, handler, **kwargs):
        super().__init__(handler, **kwargs)
        self._relay = relay

    def factory(self):
        # asyncio calls the protocol factory when it accepts a TCP
        # connection, before any TLS handshake: count it here (but not
        # the probe connection Controller.start() makes).
        if not self._relay._warming:
            self._relay._note_connection()
        return _RelaySMTP(self.handler, relay=self._relay, **self.SMTP_kwargs)

    def _create_server(self):
        return self._bind()

    async def _bind(self):
        # aiosmtpd's own _create_server() would keep self.port == 0, and
        # its start-up self-test would then connect to port 0.  The
        # socket is made here so that it can be a _ListenSocket.
        family, type_, proto, _, addr = socket.getaddrinfo(
            self.hostname, self.port, type=socket.SOCK_STREAM)[0]
        sock = _ListenSocket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(100)
        except OSError:
            sock.close()
            raise
        sock._relay = self._relay
        srv = await self.loop.create_server(
            self._factory_invoker, sock=sock, ssl=self.ssl_context)
        self.port = sock.getsockname()[1]
        return srv

    def _trigger_server(self):
        # The start-up probe has no client certificate: with
        # client_cert='required' and implicit TLS its handshake fails,
        # which is expected (the protocol factory has run by then).
        try:
            super()._trigger_server()
        except (ssl.SSLError, ConnectionError):
            pass


class _Handler:
    """aiosmtpd event handler: applies the relay's rules and records."""

    def __init__(self, relay):
        self.relay = relay

    async def handle_exception(self, error):
        # aiosmtpd's own handling, except that a failed STARTTLS handshake
        # (a client refusing our certificate, or without the certificate
        # client_cert='required' wants) is one log line, not a traceback.
        # aiosmtpd closes the connection then without sending the reply.
        if isinstance(error, TLSSetupException):
            logging.getLogger("mail.log").info(
                "STARTTLS handshake failed: %s", error.__cause__)
            return "454 4.7.0 TLS handshake failed"
        logging.getLogger("mail.log").exception("SMTP session exception")
        return "500 Error: ({}) {}".format(error.__class__.__name__, str(error))

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # With this (5-argument) hook, aiosmtpd leaves remembering the
        # client's name to us; without it MAIL would get "503 send HELO".
        session.host_name = hostname
        if not self.relay.offer_auth:
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        elif self.relay.mechanisms is not None:
            # aiosmtpd lists them sorted; list them in the order given.
            responses = ["250-AUTH " + " ".join(self.relay.mechanisms)
                         if r.startswith("250-AUTH ") else r for r in responses]
        if self.relay.dsn:
            server.dsn_ehlo()
            responses = responses[:-1] + ["250-DSN"] + responses[-1:]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.relay._rcpt_reply(address)
        if reply is not None:
            return reply
        # Defining this hook replaces aiosmtpd's default bookkeeping:
        # rcpt_options becomes a list of lists, parallel to rcpt_tos.
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(server.recorded_params(rcpt_options))
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.relay.data_delay:
            await asyncio.sleep(self.relay.data_delay)
        reply = self.relay.data_reply
        if reply is not None and not reply.startswith("2"):
            return reply
        self.relay._record({
            # aiosmtpd reports the null sender MAIL FROM:<> as "<>".
            "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": envelope.original_content,
            "mail_options": list(envelope.mail_options),
            "rcpt_options": [list(o) for o in envelope.rcpt_options],
            "auth_user": session.auth_data if session.authenticated else None,
            "auth_mech": (getattr(session, "auth_mech", None)
                          if session.authenticated else None),
            "tls": server.is_tls,
            "client_cn": server.client_cn,
            "tls_resumed": server.tls_resumed,
            "peer": session.peer[0],
        })
        server.accepted += 1
        return reply or "250 OK"


class Relay:
    """See the module docstring."""

    def __init__(self, certdir, port=0, starttls=True, implicit_tls=False,
                 cert="server", auth=True, users=None, offer_auth=True,
                 rcpt_rules=None, data_reply=None, record_dir=None,
                 on_message=None, dsn=False, smtputf8=True, data_delay=0,
                 host=HOST, mechanisms=None, tokens=None, client_cert=None,
                 close_after=None, idle_close=None):
        if cert not in ("server", "wrong", "selfsigned"):
            raise ValueError("cert must be server, wrong or selfsigned")
        if mechanisms is not None:
            mechanisms = [m.upper() for m in mechanisms]
            unknown = [m for m in mechanisms if m not in MECHANISMS]
            if unknown or not mechanisms or len(set(mechanisms)) != len(mechanisms):
                raise ValueError("mechanisms: a list without repeats from %s"
                                 % ", ".join(MECHANISMS))
        if client_cert not in (None, "optional", "required"):
            raise ValueError("client_cert must be None, 'optional' or 'required'")
        if client_cert and not (starttls or implicit_tls):
            raise ValueError("client_cert needs starttls or implicit_tls")
        self.certs = make_certs(certdir)
        self.host = host
        self.port = port
        self.implicit_tls = bool(implicit_tls)
        self.starttls = bool(starttls) and not self.implicit_tls
        self.cert = cert
        self.auth = bool(auth)
        self.users = dict({"alice": "s3cret"} if users is None else users)
        self.offer_auth = bool(offer_auth)
        self.rcpt_rules = dict(rcpt_rules or {})
        self.data_reply = data_reply
        self.record_dir = record_dir
        self.on_message = on_message
        self.dsn = bool(dsn)
        self.smtputf8 = bool(smtputf8)  # False: SMTPUTF8 not offered
        self.data_delay = data_delay    # seconds before the reply to DATA
        self.mechanisms = mechanisms
        self.tokens = tokens
        self.client_cert = client_cert
        self.close_after = close_after
        self.idle_close = idle_close
        # Whether AUTH lines may be long (bearer tokens).
        self.long_auth = any(m in _OAUTH_MECHANISMS for m in mechanisms or ())

        self.messages = []
        self.commands = []
        self.connections = 0
        self.peers = []
        self.auth_mechs = []
        self.open_connections = 0
        self._open = set()              # peers of the open connections
        self.max_concurrent = 0
        self._warming = False           # True while Controller.start() probes
        self._cond = threading.Condition()
        self._seq = 0                   # numbering for record_dir files
        self._controller = None

    # -- life cycle ------------------------------------------------------

    @property
    def tls_mode(self):
        """The matching outbox [relay] tls value: starttls, tls or none."""
        if self.implicit_tls:
            return "tls"
        return "starttls" if self.starttls else "none"

    def _ssl_context(self):
        if self.client_cert is None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        else:
            # Client certificates are checked against the test CA only
            # (create_default_context() would trust the system's CAs too).
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_verify_locations(self.certs["ca"])
            ctx.verify_mode = (ssl.CERT_REQUIRED if self.client_cert == "required"
                               else ssl.CERT_OPTIONAL)
        ctx.load_cert_chain(self.certs[self.cert], self.certs[self.cert + "_key"])
        return ctx

    def start(self):
        if self._controller is not None:
            return self
        if self.record_dir:
            os.makedirs(self.record_dir, exist_ok=True)
        ctx = self._ssl_context() if (self.starttls or self.implicit_tls) else None
        smtp_kwargs = dict(
            server_hostname=SERVER_NAME,
            enable_SMTPUTF8=self.smtputf8,
            decode_data=False,      # keep bytes; advertises 8BITMIME
            auth_required=self.auth and self.offer_auth,
            auth_require_tls=True,  # lifted per connection if implicit TLS
            authenticator=self._authenticate,
            auth_exclude_mechanism=[m for m in MECHANISMS if m not in
                                    (self.mechanisms or DEFAULT_MECHANISMS)],
        )
        if self.idle_close is not None:
            smtp_kwargs["timeout"] = self.idle_close
        if self.implicit_tls:
            smtp_kwargs["ssl_context"] = ctx        # wraps the listener
        elif self.starttls:
            smtp_kwargs["tls_context"] = ctx
            smtp_kwargs["require_starttls"] = True
        self._controller = _RelayController(
            self, _Handler(self), hostname=self.host, port=self.port, **smtp_kwargs)
        # Controller.start() makes one test connection of its own (and
        # waits until the protocol factory has run for it): not counted.
        self._warming = True
        try:
            self._controller.start()
        finally:
            self._warming = False
        self.port = self._controller.port
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- results ---------------------------------------------------------

    def wait_for(self, n, timeout=5):
        """Wait until at least n messages are recorded; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("relay got %d message(s), wanted %d"
                                       % (len(self.messages), n))
                self._cond.wait(left)
            return list(self.messages)

    def clear(self):
        with self._cond:
            self.messages.clear()
            self.commands.clear()
            self.connections = 0
            self.peers.clear()
            self.auth_mechs.clear()
            self.max_concurrent = self.open_connections

    # -- called from the relay thread -------------------------------------

    def _note_connection(self):
        with self._cond:
            self.connections += 1

    def _note_accept(self, peer):
        with self._cond:
            self.peers.append(peer[:2])
            self._open.add(peer)
            self.open_connections = len(self._open)
            self.max_concurrent = max(self.max_concurrent, self.open_connections)

    def _note_done(self, peer):
        """The connection from peer is over: QUIT read, or closed."""
        with self._cond:
            self._open.discard(peer)
            self.open_connections = len(self._open)

    def _auth_ok(self, session, mechanism, user):
        """A successful AUTH: noted before aiosmtpd sends the 235."""
        session.auth_mech = mechanism
        with self._cond:
            self.auth_mechs.append(mechanism)
        return AuthResult(success=True, auth_data=user)

    def _check_token(self, user, token):
        """The user a bearer token authenticates, or None.  user is None
        when the client named none (OAUTHBEARER without a=): a tokens dict
        then finds the user by the token."""
        tokens = self.tokens
        if callable(tokens):
            return (user if user is not None else "") if tokens(user, token) else None
        for name, valid in (tokens or {}).items():
            if (user is None or name == user) and hmac.compare_digest(
                    str(valid).encode("utf-8"), token.encode("utf-8")):
                return name
        return None

    def _note_command(self, raw):
        line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
        words = line.split()
        if words and words[0].upper() == "AUTH" and len(words) > 2:
            line = "%s %s <redacted>" % (words[0], words[1])
        with self._cond:
            self.commands.append(line)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        # aiosmtpd authenticator: auth_data is a LoginPassword of bytes.
        login = auth_data.login.decode("utf-8", errors="replace")
        want = self.users.get(login)
        if want is not None and auth_data.password == want.encode("utf-8"):
            return self._auth_ok(session, mechanism, login)
        # handled=False makes aiosmtpd send "535 5.7.8 Authentication
        # credentials invalid"; the default handled=True would send nothing.
        return AuthResult(success=False, handled=False)

    def _rcpt_reply(self, address):
        """The rule's reply for this recipient, or None to accept it."""
        addr = address.lower()
        local = addr.rpartition("@")[0] if "@" in addr else addr
        for key, reply in self.rcpt_rules.items():
            if not any(c in key for c in "*?[") and key.lower() == addr:
                return reply
        for key, reply in self.rcpt_rules.items():
            if any(c in key for c in "*?["):
                pat = key.lower()
                if fnmatch.fnmatchcase(addr, pat) or fnmatch.fnmatchcase(local, pat):
                    return reply
        return None

    def _record(self, msg):
        with self._cond:
            self._seq += 1
            seq = self._seq
            if self.record_dir:
                base = os.path.join(self.record_dir, str(seq))
                with open(base + ".eml", "wb") as f:
                    f.write(msg["data"])
                env = {k: v for k, v in msg.items() if k != "data"}
                env["size"] = len(msg["data"])
                with open(base + ".json", "w") as f:
                    json.dump(env, f, indent=2)
                    f.write("\n")
            self.messages.append(msg)
            self._cond.notify_all()
        if self.on_message is not None:
            self.on_message(dict(msg, seq=seq))


# -- script mode -------------------------------------------------------------

def _print_message(msg, dsn=False, mech=False):
    env = "message %d from=<%s> to=%s auth=%s tls=%s size=%d" % (
        msg["seq"], msg["mail_from"],
        ",".join("<%s>" % r for r in msg["rcpt_tos"]),
        msg["auth_user"] or "-", "yes" if msg["tls"] else "no",
        len(msg["data"]))
    if mech:
        env += " mech=%s" % (msg["auth_mech"] or "-")
    if dsn:
        env += " mail_options=%s rcpt_options=%s" % (
            json.dumps(msg["mail_options"], separators=(",", ":")),
            json.dumps(msg["rcpt_options"], separators=(",", ":")))
    out = sys.stdout.buffer
    out.write(env.encode("utf-8", errors="replace") + b"\n")
    out.write(msg["data"])
    if not msg["data"].endswith(b"\n"):
        out.write(b"\n")
    out.write(b"\n")
    out.flush()


def main(argv=None):
    p = argparse.ArgumentParser(description="Loopback SMTP relay for outbox tests")
    p.add_argument("--certdir", help="certificate directory (default: a temporary one)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--no-starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--cert", default="server", choices=("server", "wrong", "selfsigned"))
    p.add_argument("--no-auth", action="store_true", help="do not require AUTH")
    p.add_argument("--user", default="alice")
    p.add_argument("--password", default="s3cret")
    p.add_argument("--record-dir")
    p.add_argument("--rcpt-rule", action="append", default=[], metavar="ADDR=REPLY")
    p.add_argument("--data-reply")
    p.add_argument("--dsn", action="store_true",
                   help="advertise DSN and accept RET/ENVID/NOTIFY/ORCPT")
    p.add_argument("--host", default=HOST, help="address to listen on, e.g. ::1")
    p.add_argument("--mechanisms", metavar="M1,M2",
                   help="AUTH mechanisms to offer, from " + ",".join(MECHANISMS))
    p.add_argument("--token", action="append", default=[], metavar="USER=TOKEN",
                   help="a valid bearer token (XOAUTH2, OAUTHBEARER)")
    p.add_argument("--client-cert", choices=("optional", "required"))
    p.add_argument("--close-after", type=int, metavar="N",
                   help="421 and close after N messages on a connection")
    p.add_argument("--idle-close", type=float, metavar="SECONDS",
                   help="421 and close a connection idle this long")
    p.add_argument("-v", "--verbose", action="store_true", help="log SMTP traffic to stderr")
    a = p.parse_args(argv)

    logging.basicConfig(level=logging.INFO if a.verbose else logging.ERROR,
                        format="relay: %(message)s", stream=sys.stderr)
    certdir = a.certdir or tempfile.mkdtemp(prefix="outbox-relay-certs.")
    rules = dict(r.split("=", 1) for r in a.rcpt_rule)
    mechanisms = a.mechanisms.split(",") if a.mechanisms else None
    tokens = dict(t.split("=", 1) for t in a.token)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    relay = Relay(certdir, port=a.port, starttls=not a.no_starttls,
                  implicit_tls=a.implicit_tls, cert=a.cert, auth=not a.no_auth,
                  users={a.user: a.password}, rcpt_rules=rules,
                  data_reply=a.data_reply, record_dir=a.record_dir,
                  on_message=lambda m: _print_message(m, dsn=a.dsn,
                                                      mech=bool(mechanisms)),
                  dsn=a.dsn, host=a.host, mechanisms=mechanisms, tokens=tokens,
                  client_cert=a.client_cert, close_after=a.close_after,
                  idle_close=a.idle_close)
    with relay:
        print("listening %s %d" % (relay.host, relay.port), flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
