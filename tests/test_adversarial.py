"""Adversarial tests (issue 7): hostile relays, hostile input, a hostile
neighbour in the shared spool base, and inputs sized to exhaust memory or
time.

The relays here are tests/rawsmtp.py servers: raw sockets that record
every byte outbox sends, in clear and under TLS, so "nothing is sent in
clear" is checked on the wire and not on what a polite server parsed.

  TLS         no STARTTLS, STARTTLS refused (454), a reply injected after
              the STARTTLS 220 in the same segment (CVE-2021-22947 style),
              220 then no TLS, expired / self-signed / wrong-host
              certificates (STARTTLS and implicit TLS), a TLS 1.0/1.1-only
              server: only EHLO and STARTTLS ever leave in clear, no AUTH,
              the mail stays queued with a one-line reason, exit 0 (75 for
              -q, 76 for --check-relays)
  AUTH        configured but offered only before TLS, never, or only in a
              session without STARTTLS: nothing sent, no credential on the
              wire in any form
  injection   CR, LF, NUL and control characters through -f, -F, -N, -R,
              -V, recipient arguments, -t headers, -bs commands and the
              body (SMTP smuggling sequences): refused with one line and
              64/65, or neutralised, never sent as commands
  secrets     one password (and an OAuth2 client secret and refresh
              token) through every mode: never in stdout, stderr, syslog
              (captured through a private /dev/log), mailq or the spool
  spool       a symlink or a directory planted at <base>/<uid> by another
              user: exit 73, nothing written anywhere
  bounds      100,000 recipients (-bs, -t), a 10 MiB header block, a relay
              answering one byte per second, a 1 GiB message relayed in
              under 16 MiB of RSS

What is covered elsewhere and not repeated here: tests/test_delivery.py
(aiosmtpd relay: self-signed and wrong-host certificates, no STARTTLS,
AUTH not offered, wrong password), tests/test_submit.py (CR in a
recipient argument, LF in -f, a bare-LF dot line, -v hides the AUTH
PLAIN secret), tests/test_spool_states.py (a symlinked or too-open
[queue] dir, a symlink in the shared base as root), tests/test_bs.py (NUL
in -bs DATA, overlong command lines), tests/test_transport.py
(--check-relays steps, pins, TLS 1.3 minimum).
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import warnings

import pytest

from conftest import SENDMAIL
from rawsmtp import RawSMTP, server_context

MSG = b"Subject: adversarial\n\nhello\n"
RCPT = "bob@example.org"
USER = "alice"
# distinctive, so that any copy of it (or of its base64) is found
PASSWORD = "Zq7-outbox-SECRET-pw-9d41c"
TIMEOUTS = {"connect_timeout": "5", "timeout": "5", "data_timeout": "5"}


# -- helpers -------------------------------------------------------------------

@pytest.fixture
def raw():
    """Factory: raw(**RawSMTP kwargs) starts a rawsmtp.RawSMTP, stopped
    at teardown."""
    started = []

    def start(**kw):
        kw.setdefault("users", {USER: PASSWORD})
        s = RawSMTP(**kw).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def raw_outbox(outbox, server, **relay):
    """outbox() for a raw server: STARTTLS unless told, short timeouts."""
    keys = dict(TIMEOUTS, tls="starttls")
    keys.update(relay)
    return outbox(server, relay=keys)


def secret_forms(*secrets):
    """Byte strings that betray a secret: itself, and its base64 in each
    of the three alignments it can have inside a longer base64 text (AUTH
    PLAIN encodes "\\0user\\0password", LOGIN the password alone)."""
    forms = set()
    for s in secrets:
        s = s.encode() if isinstance(s, str) else s
        forms.add(s)
        for k in range(3):
            enc = base64.b64encode(b"\0" * k + s)
            start = (k + 2) // 3 * 4                 # groups with a prefix byte
            end = (k + len(s)) // 3 * 4              # complete groups only
            forms.add(enc[start:end])
    return sorted(f for f in forms if len(f) >= 8)


def assert_no_secret(label, data, secrets):
    for form in secret_forms(*secrets):
        assert form not in data, "%s holds %r" % (label, form)


def spool_bytes(spool):
    """{path: bytes} of every file under the spool, read raw."""
    found = {}
    for dirpath, _dirs, files in os.walk(spool):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    found[p] = fh.read()
    return found


def queued(ob):
    return [f for f in ob.queue_files() if not f.endswith(".st")]


def clear_verbs(conn):
    """The commands conn sent in clear; asserts it sent whole lines only.
    A TLS handshake record right after STARTTLS (the ClientHello, when the
    server went on in clear instead of doing TLS) is not SMTP: cut off."""
    data = bytes(conn.clear_in)
    mark = data.find(b"STARTTLS\r\n")
    if mark >= 0 and data[mark + 10:mark + 12] == b"\x16\x03":
        data = data[:mark + 10]
    assert data == b"" or data.endswith(b"\r\n"), data
    return [l.split(b" ")[0].upper() for l in data.split(b"\r\n")[:-1]]


def assert_nothing_in_clear(server, starttls=True):
    """Every connection sent only EHLO (and STARTTLS) in clear, nothing
    under TLS beyond EHLO, no AUTH anywhere, no MAIL/RCPT/DATA, and no
    credential in any byte."""
    assert server.wait_idle(), "a session did not end"
    assert server.connections >= 1
    for c in server.conns:
        verbs = clear_verbs(c)
        allowed = [b"EHLO", b"STARTTLS"] if starttls else [b"EHLO"]
        assert set(verbs) <= set(allowed) and verbs[:1] == [b"EHLO"], verbs
        assert not any(l.upper().startswith((b"AUTH", b"MAIL", b"RCPT", b"DATA"))
                       for _tls, l in c.commands), c.commands
    assert server.messages == []
    assert_no_secret("the wire", server.all_bytes(), [PASSWORD])


def mailq_reason(ob, *wanted):
    """mailq lists the one message with a one-line reason holding wanted."""
    res = ob.mailq()
    assert res.returncode == 0
    out = res.stdout.decode()
    reasons = [l.strip() for l in out.splitlines() if l.strip().startswith("(")]
    assert len(reasons) == 1, out
    for w in wanted:
        assert w in reasons[0], out
    assert RCPT in out
    return reasons[0]


def mailq_reason_any(ob):
    """The one reason mailq gives for every queued message."""
    out = ob.mailq().stdout.decode()
    reasons = {l.strip() for l in out.splitlines() if l.strip().startswith("(")}
    assert len(reasons) == 1, out
    return reasons.pop()


def one_line_error(res, code, *wanted):
    """exit status code; stderr is one "sendmail: " line holding wanted."""
    assert res.returncode == code, res
    err = res.stderr.decode()
    assert err.startswith("sendmail: ") and err.count("\n") == 1, err
    for w in wanted:
        assert w in err, err
    return err


def tls11_context(certs):
    """A server context that speaks only TLS 1.0 and 1.1 (checked: a
    TLS 1.1 client does get TLS 1.1 from it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = server_context(certs, min_version=ssl.TLSVersion.TLSv1,
                             max_version=ssl.TLSVersion.TLSv1_1,
                             ciphers="DEFAULT:@SECLEVEL=0")
    return ctx


def tls11_client_version(certs, server):
    """What a Python TLS 1.1 client negotiates with server (STARTTLS)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(certs["ca"])
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO probe\r\n")
        while f.readline()[3:4] != b" ":
            pass
        s.sendall(b"STARTTLS\r\n")
        f.readline()
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            version = t.version()
            t.sendall(b"QUIT\r\n")
            t.recv(100)
    return version


# -- TLS: nothing in clear, nothing unverified ----------------------------------

INJECTED = b"250-raw.test injected\r\n250 AUTH PLAIN LOGIN\r\n"

# name: (RawSMTP keywords (certs -> dict), words of the one-line reason)
TLS_CASES = {
    "no STARTTLS offered": (
        lambda certs: dict(starttls_reply=None, caps_clear=["PIPELINING", "8BITMIME"]),
        ["STARTTLS not offered or refused"]),
    "STARTTLS refused 454": (
        lambda certs: dict(starttls_reply="454 4.7.0 TLS not available due to "
                           "temporary reason", caps_clear=["PIPELINING", "STARTTLS"]),
        ["STARTTLS not offered or refused", "454"]),
    "response injected before the handshake": (
        lambda certs: dict(inject=INJECTED, tls_ctx=server_context(certs)),
        []),
    "220 then no TLS at all": (
        lambda certs: dict(tls_ctx=None),
        ["TLS handshake failed"]),
    "expired certificate": (
        lambda certs: dict(tls_ctx=server_context(certs, "expired")),
        ["certificate verification failed", "expired"]),
    "self-signed certificate": (
        lambda certs: dict(tls_ctx=server_context(certs, "selfsigned")),
        ["certificate verification failed"]),
    "wrong host name": (
        lambda certs: dict(tls_ctx=server_context(certs, "wrong")),
        ["certificate verification failed"]),
    "TLS 1.0/1.1 only": (
        lambda certs: dict(tls_ctx=tls11_context(certs)),
        ["TLS handshake failed"]),
}


@pytest.mark.parametrize("case", list(TLS_CASES))
def test_tls_failure_sends_nothing_in_clear_and_keeps_the_mail(raw, outbox, certs,
                                                                case):
    kw, words = TLS_CASES[case]
    s = raw(**kw(certs))
    if case == "TLS 1.0/1.1 only":
        # the server really speaks TLS 1.1: outbox refuses it, not OpenSSL
        assert tls11_client_version(certs, s) == "TLSv1.1"
        s.wait_idle()
        s.conns.clear()
    ob = raw_outbox(outbox, s)
    res = ob.run(["-i", RCPT], input=MSG)
    # documented: a TLS failure is temporary, the submission exits 0, and
    # a program (stderr not a terminal) hears nothing
    assert (res.returncode, res.stderr) == (0, b""), res
    assert len(queued(ob)) == 1
    mailq_reason(ob, "nothing was sent", *words)
    assert_nothing_in_clear(s, starttls=case != "no STARTTLS offered")
    if case == "response injected before the handshake":
        # outbox must not act on the injected lines: no AUTH, no second
        # EHLO in clear, and the handshake never completed
        assert all(not c.tls for c in s.conns)
    # a flush tries again, keeps the mail and says so (75); -v shows the
    # dialogue but no credential
    res = ob.run(["-q", "-v"])
    assert res.returncode == 75, res
    assert b"nothing was sent" in res.stderr
    assert_no_secret("stderr of -q -v", res.stderr, [PASSWORD])
    assert len(queued(ob)) == 1
    assert_nothing_in_clear(s, starttls=case != "no STARTTLS offered")


@pytest.mark.parametrize("cert", ["expired", "selfsigned", "wrong"])
def test_implicit_tls_bad_certificate_sends_nothing(raw, outbox, certs, cert):
    s = raw(implicit_tls=True, tls_ctx=server_context(certs, cert))
    ob = raw_outbox(outbox, s, tls="tls")
    res = ob.run(["-i", RCPT], input=MSG)
    assert (res.returncode, res.stderr) == (0, b""), res
    mailq_reason(ob, "certificate verification failed", "nothing was sent")
    s.wait_idle()
    assert s.clear_bytes() == b"" and s.messages == []
    assert not any(c.commands for c in s.conns)


def test_tls_checks_report_the_tls_step(raw, outbox, certs):
    for case in ("no STARTTLS offered", "STARTTLS refused 454", "expired certificate",
                 "self-signed certificate", "wrong host name", "TLS 1.0/1.1 only"):
        kw, _ = TLS_CASES[case]
        s = raw(**kw(certs))
        res = raw_outbox(outbox, s).run(["--check-relays"])
        assert res.returncode == 76, (case, res)
        assert "failed at tls: " in res.stdout.decode(), case
        assert_nothing_in_clear(s, starttls=case != "no STARTTLS offered")


def test_injected_starttls_response_is_reported_as_a_tls_failure(raw, outbox, certs):
    s = raw(inject=INJECTED, tls_ctx=server_context(certs))
    ob = raw_outbox(outbox, s)
    res = ob.run(["--check-relays"])
    assert_nothing_in_clear(s)
    assert "failed at tls: " in res.stdout.decode(), res.stdout
    assert res.returncode == 76


# -- AUTH: never unauthenticated, never in clear ---------------------------------

@pytest.mark.parametrize("case", ["AUTH only before TLS", "AUTH never offered",
                                  "AUTH offered in clear, no STARTTLS"])
def test_auth_configured_but_not_offered_after_tls_sends_nothing(raw, outbox, certs,
                                                                  case):
    if case == "AUTH only before TLS":
        s = raw(tls_ctx=server_context(certs),
                caps_clear=["PIPELINING", "AUTH PLAIN LOGIN", "STARTTLS"],
                caps_tls=["PIPELINING", "8BITMIME"])
    elif case == "AUTH never offered":
        s = raw(tls_ctx=server_context(certs), caps_tls=["PIPELINING"])
    else:
        s = raw(starttls_reply=None, caps_clear=["PIPELINING", "AUTH PLAIN LOGIN"])
    ob = raw_outbox(outbox, s)
    for args in (["-i", RCPT], ["-v", "-i", RCPT]):
        res = ob.run(args, input=MSG)
        assert res.returncode == 0, res
        assert_no_secret("stderr", res.stderr, [PASSWORD])
    assert len(queued(ob)) == 2
    assert_nothing_in_clear(s, starttls=case != "AUTH offered in clear, no STARTTLS")
    if case != "AUTH offered in clear, no STARTTLS":
        assert all(c.tls for c in s.conns)       # TLS worked; AUTH was the problem
        why = mailq_reason_any(ob)
        assert "did not offer AUTH after TLS" in why and "nothing was sent" in why
    res = ob.run(["--check-relays"])
    assert res.returncode == (77 if case != "AUTH offered in clear, no STARTTLS" else 76)
    assert_nothing_in_clear(s, starttls=case != "AUTH offered in clear, no STARTTLS")



# -- CR, LF and NUL injection -----------------------------------------------------

EVIL = "evil@example.net"

# (id, argv before the recipients, recipients, stdin, exit status, words of the
# one-line error): refused before anything is queued or sent
REFUSED = [
    ("-f CRLF", ["-f", "a@example.org\r\nDATA"], [RCPT], MSG, 64,
     ["-f ", "line break in address"]),
    ("-f LF", ["-f", "a@example.org\nDATA"], [RCPT], MSG, 64,
     ["-f ", "line break in address"]),
    ("-f CR", ["-f", "a@example.org\rRSET"], [RCPT], MSG, 64,
     ["-f ", "line break in address"]),
    ("-f control character", ["-f", "a\x1b[2J@example.org"], [RCPT], MSG, 64,
     ["-f ", "control character in address"]),
    ("-F CRLF header", ["-F", "Jo\r\nBcc: " + EVIL], [RCPT], MSG, 64,
     ["-F: line break in the full name"]),
    ("-F LF header", ["-F", "Jo\nBcc: " + EVIL], [RCPT], MSG, 64,
     ["-F: line break in the full name"]),
    ("-F CR", ["-F", "Jo\rX"], [RCPT], MSG, 64, ["-F: line break in the full name"]),
    ("recipient CRLF", ["-i"], [RCPT + "\r\nDATA"], MSG, 64,
     ["line break in address"]),
    ("recipient LF", ["-i"], [RCPT + "\nRSET"], MSG, 64, ["line break in address"]),
    ("recipient NUL-less control", ["-i"], ["bob\x7f@example.org"], MSG, 64,
     ["control character in address"]),
    ("-V has no room for CRLF", ["-V", "x" * 90 + "\r\n" + "y" * 10], [RCPT], MSG, 64,
     ["-V"]),
    ("-N CRLF", ["-N", "never\r\nRCPT TO:<%s>" % EVIL], [RCPT], MSG, 64, ["-N "]),
    ("-R CRLF", ["-R", "full\r\nRCPT TO:<%s>" % EVIL], [RCPT], MSG, 64, ["-R "]),
    ("-t To: control character", ["-t", "-i"], [],
     b"To: <bob\x01@example.org>\nSubject: x\n\nbody\n", 65,
     ["To: bad recipient address: control character in address", "nothing was queued"]),
    ("-t Cc: escape sequence", ["-t", "-i"], [],
     b"To: bob@example.org\nCc: <x\x1b[2J@example.org>\n\nbody\n", 65,
     ["Cc: bad recipient address: control character in address"]),
    ("-t To: NUL", ["-t", "-i"], [], b"To: bob@example.org\0, " + EVIL.encode() +
     b"\n\nbody\n", 65, ["NUL byte"]),
    ("header NUL", ["-i"], [RCPT], b"Subject: a\0\r\nBcc: evil\n\nbody\n", 65,
     ["NUL byte", "nothing was queued"]),
    ("body NUL", ["-i"], [RCPT], b"Subject: a\n\nbody\0\r\nRCPT TO:<x>\n", 65,
     ["NUL byte"]),
]


@pytest.mark.parametrize("name,argv,rcpts,data,code,words", REFUSED,
                         ids=[r[0] for r in REFUSED])
def test_injection_is_refused_with_one_line(raw, outbox, name, argv, rcpts, data, code,
                                            words):
    s = raw(starttls_reply=None)
    ob = raw_outbox(outbox, s, tls="none", user=None, password=None)
    res = ob.run(argv + rcpts, input=data)
    err = one_line_error(res, code, *words)
    # the diagnostic itself cannot be forged into more lines or terminal codes
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", err), err
    assert ob.queue_files() == [] and s.connections == 0


# Accepted on purpose (see the manual) but harmless: what reaches the relay
# holds no injected command, recipient or header.
NEUTRALISED = [
    # -V is xtext-encoded: CR and LF become +0D+0A inside ENVID=
    ("-V CRLF is xtext-encoded", ["-V", "id\r\nRCPT TO:<%s>" % EVIL, "-i", RCPT], MSG,
     [RCPT]),
    # a lone CR ends a header line like LF does; what follows is no header,
    # so the body starts there: no recipient comes from it
    ("-t lone CR ends the To: line", ["-t", "-i"],
     b"To: bob@example.org\rRCPT TO:<evil@example.net>\nSubject: x\n\nbody\n", [RCPT]),
    # From rewriting keeps a display name only without a line break in it
    ("folded From: display name is dropped", ["-i", RCPT],
     b"From: Evil\n Bcc: evil@example.net <root>\nSubject: x\n\nbody\n", [RCPT]),
]


@pytest.mark.parametrize("name,argv,data,want", NEUTRALISED,
                         ids=[r[0] for r in NEUTRALISED])
def test_injection_is_neutralised(raw, outbox, name, argv, data, want):
    s = raw(starttls_reply=None, caps_clear=["PIPELINING", "8BITMIME", "DSN"])
    ob = raw_outbox(outbox, s, tls="none", user=None, password=None)
    res = ob.run(argv, input=data)
    assert (res.returncode, res.stderr) == (0, b""), res
    assert s.wait_idle()
    [m] = s.messages
    assert [r.split(b">")[0].lstrip(b"<").decode() for r in m["rcpt_tos"]] == want
    commands = [l for _tls, l in s.conns[0].commands]
    assert not any(l.startswith(b"RCPT") and EVIL.encode() in l for l in commands)
    wire = s.clear_bytes()
    assert not re.search(rb"(?<!\r)\n|\r(?!\n)", wire), "bare CR or LF on the wire"
    head = m["head"].split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and not head.startswith(b"Bcc:")
    if name.startswith("-V"):
        assert b" ENVID=id+0D+0ARCPT" in wire
    if name.startswith("folded From"):
        assert b"\r\nFrom: app@example.com\r\n" in m["head"]


@pytest.mark.parametrize("where", ["-f angle", "-f group", "recipient angle",
                                   "recipient group"])
def test_line_break_outside_angle_brackets_is_refused(raw, outbox, where):
    s = raw(starttls_reply=None)
    ob = raw_outbox(outbox, s, tls="none", user=None, password=None)
    inject = {"-f angle": "a@example.org\r\nRCPT TO:<%s>" % EVIL,
              "-f group": "a@example.org\r\nRCPT TO:%s" % EVIL,
              "recipient angle": "bob@example.org\r\nRCPT TO:<%s>" % EVIL,
              "recipient group": "bob@example.org\r\nRCPT TO:%s" % EVIL}[where]
    args = (["-odq", "-f", inject, RCPT] if where.startswith("-f")
            else ["-odq", inject])
    res = ob.run(args, input=MSG)
    queue = b"".join(open(f, "rb").read() for f in queued(ob))
    assert EVIL.encode() not in queue, queue[:200]
    one_line_error(res, 64, "line break in address")


BS_INJECTION = [
    # a sender holding CRLF, as a careless client library writes it: the
    # line ends where the CRLF is; the broken MAIL fails, so the
    # "injected" RCPT is refused too
    ("CRLF inside MAIL FROM", b"MAIL FROM:<a@example.org\r\nRCPT TO:<evil@example.net>>",
     [501, 503]),
    ("lone CR inside MAIL FROM", b"MAIL FROM:<a@example.org\rRCPT TO:<evil@example.net>>",
     [501, 503]),
    ("NUL after MAIL FROM", b"MAIL FROM:<a@example.org>\0RCPT TO:<evil@example.net>",
     [500]),
    ("NUL in the sender", b"MAIL FROM:<a\0@example.org>", [500]),
    ("control character in the sender", b"MAIL FROM:<a\x0b@example.org>", [501]),
    ("escape in a recipient", b"MAIL FROM:<a@example.org>\r\n"
     b"RCPT TO:<evil\x1b]0;x\x07@example.net>", [250, 501]),
    ("NUL in a recipient", b"MAIL FROM:<a@example.org>\r\n"
     b"RCPT TO:<evil@example.net\0>", [250, 500]),
]


@pytest.mark.parametrize("name,lines,codes", BS_INJECTION,
                         ids=[r[0] for r in BS_INJECTION])
def test_bs_injection_is_refused_and_nothing_injected_is_sent(raw, outbox, name, lines,
                                                               codes):
    s = raw(starttls_reply=None)
    ob = raw_outbox(outbox, s, tls="none", user=None, password=None)
    session = (b"EHLO c\r\n" + lines + b"\r\nDATA\r\nRSET\r\n"
               b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
               b"Subject: ok\r\n\r\nok\r\n.\r\nQUIT\r\n")
    res = ob.run(["-bs"], input=session)
    assert res.returncode == 0 and res.stderr == b""
    replies = [l for l in res.stdout.split(b"\r\n") if l[3:4] == b" "]
    got = [int(l[:3]) for l in replies]
    # greeting, EHLO, the injection's replies, then DATA refused (554, or
    # 503/554 when MAIL stands), RSET and a clean transaction
    assert got[:2] == [220, 250] and got[2:2 + len(codes)] == codes, replies
    assert got[2 + len(codes)] in (554, 503), replies
    assert got[-6:] == [250, 250, 250, 354, 250, 221], replies
    assert s.wait_idle()
    [m] = s.messages                             # only the clean message
    assert m["rcpt_tos"] == [b"<bob@example.org>"]
    assert EVIL.encode() not in s.clear_bytes()
    assert len(queued(ob)) == 0                  # delivered, nothing left


SMUGGLING = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r",
             b"\r\n.\r\n"]


def test_smtp_smuggling_sequences_in_the_body_are_dot_stuffed(raw, outbox):
    s = raw(starttls_reply=None)
    ob = raw_outbox(outbox, s, tls="none", user=None, password=None)
    smuggled = b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
    body = b"".join(b"part %d" % i + seq + smuggled for i, seq in enumerate(SMUGGLING))
    res = ob.run(["-i", RCPT], input=b"Subject: smuggle\n\n" + body)
    assert res.returncode == 0, res
    assert s.wait_idle()
    [m] = s.messages
    wire = s.clear_bytes()
    assert not re.search(rb"(?<!\r)\n|\r(?!\n)", wire), "bare CR or LF on the wire"
    # one end of data, one MAIL and one RCPT command: the rest is data
    assert wire.count(b"\r\n.\r\n") == 1
    assert [l for _t, l in s.conns[0].commands if l.startswith(b"MAIL")] == \
        [b"MAIL FROM:<app@example.com>"]
    assert m["head"].count(b"\r\n..\r\n") == len(SMUGGLING)


# -- secrets never leave ------------------------------------------------------------

# Run inside a private mount namespace (unshare -m): a tmpfs over /dev with
# the usual nodes bound back in and /dev/log bound to the test's own socket,
# so that whatever outbox gives syslog(3) is captured, and the machine's
# /dev (which may have no /dev/log at all) is left alone.
_LOGWRAP = r"""
set -e
old=$1; sock=$2; shift 2
mount --rbind /dev "$old"
mount -t tmpfs -o mode=0755,size=64k outbox-test-dev /dev
for n in null zero full random urandom tty; do
  [ -e "$old/$n" ] || continue
  : > /dev/$n; mount --bind "$old/$n" /dev/$n
done
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
: > /dev/log; mount --bind "$sock" /dev/log
umount -l "$old"
exec "$@"
"""


class Syslog:
    """A syslog(3) sink on a socket of its own; wrap(cmd) runs cmd with
    /dev/log pointing at it (when the test may unshare a mount namespace:
    root), else cmd as it is (.captured is False then)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ob-log-")   # short: sun_path
        self.path = os.path.join(self.dir, "log")
        self.olddev = os.path.join(self.dir, "dev")
        os.mkdir(self.olddev)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.settimeout(0.2)
        self.records = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.captured = os.geteuid() == 0 and subprocess.run(
            self.wrap(["true"]), capture_output=True).returncode == 0

    def _read(self):
        while not self._stop.is_set():
            try:
                self.records.append(self.sock.recv(65536))
            except socket.timeout:
                continue
            except OSError:
                return

    def wrap(self, cmd):
        if getattr(self, "captured", True) is False:
            return list(cmd)
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", _LOGWRAP,
                "sh", self.olddev, self.path] + list(cmd)

    def text(self):
        time.sleep(0.3)
        return b"\n".join(self.records)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def syslog():
    s = Syslog()
    yield s
    s.close()


def run_logged(ob, syslog, args, input=b"", env=None, timeout=60):
    return subprocess.run(syslog.wrap([ob.binary, "-C", ob.conf_path] + list(args)),
                          input=input, capture_output=True, env=ob.env(env),
                          timeout=timeout)


def test_secrets_never_reach_output_log_queue_or_spool(relay, outbox, syslog, tmp_path,
                                                        certs):
    """One password through every mode; it, and its base64, must appear in
    no standard output or error, syslog record, mailq listing or spool
    file.  The relay does see it (under TLS): that is the point."""
    from oauth import TokenServer
    seen = []                   # (label, bytes)

    def run(ob, label, args, input=b"", env=None):
        res = run_logged(ob, syslog, args, input=input, env=env)
        seen.append((label + " stdout", res.stdout))
        seen.append((label + " stderr", res.stderr))
        return res

    good = relay(users={USER: PASSWORD}, dsn=True,
                 rcpt_rules={"nobody@example.org": "550 5.1.1 No such user"})
    ob = outbox(good)
    assert ob.config["relay"]["password"] == PASSWORD
    assert run(ob, "submit", ["-i", RCPT], MSG).returncode == 0
    assert run(ob, "submit -v", ["-v", "-i", RCPT], MSG).returncode == 0
    res = run(ob, "-bs -v", ["-bs", "-v"], b"EHLO c\r\nMAIL FROM:<a@example.org>\r\n"
              b"RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: bs\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert res.returncode == 0 and b"250 2.0.0 Ok: queued" in res.stdout
    for i in range(2):
        assert run(ob, "-odq", ["-odq", "-i", RCPT], MSG).returncode == 0
    assert run(ob, "-bp", ["-bp"]).returncode == 0
    ids = [m["id"] for m in json.loads(run(ob, "mailq --json", ["-bp", "--json"]).stdout)]
    assert len(ids) == 2
    assert run(ob, "--hold", ["--hold", ids[0]]).returncode == 0
    assert run(ob, "-q", ["-q"]).returncode == 0
    assert run(ob, "--release", ["--release", ids[0]]).returncode == 0
    assert run(ob, "-q -v", ["-q", "-v"]).returncode == 0
    assert run(ob, "-bv", ["-bv", RCPT, "root"]).returncode == 0
    assert run(ob, "--check-relays", ["--check-relays"]).returncode == 0
    # a bounce: one recipient refused, the other delivered, the refusal
    # bounced to the sender over the same connection
    res = run(ob, "bounce", ["-v", "-f", "sender@example.org", "-i", RCPT,
                             "nobody@example.org"], MSG)
    assert res.returncode == 0 and b"nobody@example.org" in res.stderr
    # a queue runner for a moment, stopped as a service manager would
    ob.run(["-odq", "-i", RCPT], input=MSG)
    p = subprocess.Popen(syslog.wrap([ob.binary, "-C", ob.conf_path, "-q1h"]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ob.env())
    time.sleep(1.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0
    seen += [("-q1h stdout", out), ("-q1h stderr", err)]
    delivered = good.wait_for(7)
    assert all(m["auth_user"] == USER for m in delivered)
    assert any(m["mail_from"] == "" for m in delivered)          # the bounce

    # a relay that refuses this password: AUTH fails, mail stays queued
    other = relay(users={USER: "not-" + PASSWORD})
    bad = outbox(other, relay={"password": PASSWORD})
    for label, args in (("auth error submit", ["-i", RCPT]),
                        ("auth error submit -v", ["-v", "-i", RCPT]),
                        ("auth error -q -v", ["-q", "-v"]),
                        ("auth error --check-relays", ["--check-relays"]),
                        ("auth error -bp", ["-bp"]),
                        ("auth error --json", ["-bp", "--json"])):
        run(bad, label, args, MSG if "submit" in label else b"")
    assert other.messages == [] and "authentication failed" in \
        run(bad, "auth error mailq", ["-bp"]).stdout.decode()

    # OAuth2: the client secret and the refresh token
    client_secret, refresh_token = "CS-outbox-SECRET-7f3e1a90", "RT-outbox-SECRET-c51d7b22"
    with TokenServer(certs["dir"], client_id="outbox-client", client_secret=client_secret,
                     refresh_token=refresh_token) as ts:
        orelay = relay(mechanisms=["XOAUTH2"], users={"oauth@example.com": "unused"},
                       tokens=ts.valid_token)
        rt = tmp_path / "refresh"
        rt.write_text(refresh_token + "\n")
        os.chmod(rt, 0o600)
        oob = outbox(orelay, relay={
            "user": "oauth@example.com", "password": None,
            "oauth2_token_url": ts.url, "oauth2_client_id": "outbox-client",
            "oauth2_client_secret": client_secret,
            "oauth2_refresh_token_file": str(rt), "oauth2_ca_file": certs["ca"]})
        for label, args in (("oauth2 submit -v", ["-v", "-i", RCPT]),
                            ("oauth2 -odq", ["-odq", "-i", RCPT]),
                            ("oauth2 -q -v", ["-q", "-v"]),
                            ("oauth2 --check-relays", ["--check-relays"])):
            assert run(oob, label, args, MSG if "-i" in args else b"").returncode == 0
        assert len(orelay.wait_for(2)) >= 2    # the spool is shared: more went
        ts.invalid_grant = True             # revoked: refused, kept, said so
        ts.revoke_access_tokens()
        run(oob, "oauth2 revoked -v", ["-v", "-i", RCPT], MSG)
        run(oob, "oauth2 revoked -bp", ["-bp"])
        assert ts.requests and ts.requests[0]["client_secret"] == client_secret

    log = syslog.text()
    if syslog.captured:
        assert b"outbox[" in log and b"status=sent" in log, log[:500]
    seen.append(("syslog", log))
    spool = spool_bytes(ob.spool)             # the three configs share it
    assert any(os.path.basename(p).startswith("oauth2-relay") for p in spool)
    for label, data in seen:
        assert_no_secret(label, data, [PASSWORD, client_secret, refresh_token])
    for path, data in spool.items():
        assert_no_secret(path, data, [PASSWORD, client_secret])
        if os.path.basename(path) != "oauth2-relay":
            assert_no_secret(path, data, [refresh_token])
        else:
            # the token cache holds the tokens by design (outbox(8) SPOOL),
            # and nobody else may read it
            assert os.stat(path).st_mode & 0o777 == 0o600


# -- the shared spool base: a neighbour plants the user's directory ------------------

VICTIM, ATTACKER = 4242, 65534          # a user without passwd entry, and nobody


def as_user(uid):
    def become():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return become


def tree(top):
    """Every path under top, with its owner and type, for before/after."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p] = (st.st_uid, stat.S_IFMT(st.st_mode))
    return out


ATTACKS = ["symlink to the attacker's directory", "symlink to a directory of the victim",
           "directory of the attacker, mode 0777", "directory of the attacker, mode 0700"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as two other users")
@pytest.mark.parametrize("attack", ATTACKS)
def test_planted_spool_in_the_shared_base_is_refused(attack):
    top = tempfile.mkdtemp(prefix="outbox-base-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        base = os.path.join(top, "spool")         # like /var/spool/outbox
        os.mkdir(base)
        os.chmod(base, 0o1733)
        home = os.path.join(top, "home")          # the victim's
        kept = os.path.join(home, "keep")
        loot = os.path.join(top, "loot")          # the attacker's
        for d, uid, mode in ((home, VICTIM, 0o700), (kept, VICTIM, 0o700),
                             (loot, ATTACKER, 0o777)):
            os.mkdir(d)
            os.chown(d, uid, uid)
            os.chmod(d, mode)
        binary = os.path.join(top, "sendmail")    # the checkout may be private
        shutil.copy2(SENDMAIL, binary)
        conf = os.path.join(top, "outbox.conf")
        with open(conf, "w") as f:
            f.write("[mail]\nfrom = app@example.com\ndomain = example.com\n")
        os.chmod(conf, 0o644)
        planted = os.path.join(base, str(VICTIM))
        # the neighbour, as itself: the 1733 base lets anyone create an entry
        target = kept if "victim" in attack else loot
        code = ("import os; os.symlink(%r, %r)" % (target, planted)
                if attack.startswith("symlink") else
                "import os; os.mkdir(%r); os.chmod(%r, 0o%o)"
                % (planted, planted, 0o777 if "0777" in attack else 0o700))
        subprocess.run(["/usr/bin/python3", "-c", code], check=True,
                       preexec_fn=as_user(ATTACKER))
        before = tree(top)

        env = {"PATH": "/usr/bin:/bin", "HOME": home, "LC_ALL": "C",
               "OUTBOX_SPOOL_BASE": base}
        for args, data in ((["-i", RCPT], MSG), (["-odq", "-i", RCPT], MSG),
                           (["-bs"], b"EHLO c\r\nMAIL FROM:<a@example.org>\r\n"
                            b"RCPT TO:<b@example.org>\r\nDATA\r\nSubject: s\r\n\r\nx\r\n"
                            b".\r\nQUIT\r\n"),
                           (["-q"], b""), (["-bp"], b"")):
            res = subprocess.run([binary, "-C", conf] + args, input=data,
                                 capture_output=True, env=env, timeout=30,
                                 preexec_fn=as_user(VICTIM))
            assert res.returncode == 73, (args, res)
            if args == ["-bs"]:
                # the session says why in its 421, and nothing got a 250
                assert b"421 4.3.0 " in res.stdout and b"Ok: queued" not in res.stdout
                why = res.stdout.split(b"421 4.3.0 ")[1].split(b"\r\n")[0].decode()
            else:
                why = one_line_error(res, 73)
            assert "spool directory %s" % planted in why, why
            if attack.startswith("symlink"):
                assert "symlink" in why, why
            elif "0777" in attack:
                assert "must be owned by uid %d and mode 0700" % VICTIM in why, why
        # nothing was written anywhere: not through the link, not into the
        # planted directory, not in a fallback spool in the victim's home
        assert tree(top) == before
        assert os.listdir(target) == []
        if not attack.startswith("symlink"):
            assert os.listdir(planted) == []
    finally:
        shutil.rmtree(top)


# -- resource bounds -------------------------------------------------------------------

MiB = 1024 * 1024


def _sanitized():
    """Is SENDMAIL an AddressSanitizer build (make check-asan)?  Its shadow
    memory makes RSS meaningless, so the memory bounds are not checked."""
    try:
        with open(SENDMAIL, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _sanitized()


def assert_rss(kib, limit_mib):
    """Peak RSS kib (KiB) is under limit_mib MiB (unless sanitized)."""
    if not SANITIZED:
        assert kib < limit_mib * 1024, "peak RSS %d KiB, limit %d MiB" % (kib, limit_mib)

# Runs a command and reports its peak RSS the way /usr/bin/time -v does,
# for machines without GNU time (the "time" package).
_RUSAGE = r"""
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write("\tMaximum resident set size (kbytes): %d\n" % usage.ru_maxrss)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(ob, args, input=None, stdin=None, timeout=120):
    """Run outbox with args under /usr/bin/time -v; return (CompletedProcess,
    peak RSS in KiB, seconds).  input: bytes; stdin: a file object (a pipe
    from a producer) instead."""
    fd, report = tempfile.mkstemp(prefix="outbox-rss-")
    os.close(fd)
    cmd = [ob.binary, "-C", ob.conf_path] + list(args)
    if os.access("/usr/bin/time", os.X_OK):
        cmd = ["/usr/bin/time", "-v", "-o", report] + cmd
    else:
        cmd = ["/usr/bin/python3", "-c", _RUSAGE, report] + cmd
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdin=stdin if stdin is not None else subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ob.env(),
                         start_new_session=True)
    try:
        out, err = p.communicate(input=input if stdin is None else None,
                                 timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)        # time's child too
        p.communicate()
        os.unlink(report)
        raise
    elapsed = time.monotonic() - start
    with open(report) as f:
        text = f.read()
    os.unlink(report)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    assert m, text
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), int(m.group(1)), elapsed


def rcpt_lines(path):
    with open(path, "rb") as f:
        head = f.read(32 * MiB).split(b"\n\n", 1)[0]
    return [l for l in head.split(b"\n") if l.startswith(b"rcpt ")]


def test_bs_100000_recipients_hit_the_documented_limit(outbox):
    """-bs takes 10000 recipients per message (452 4.5.3 after that), and
    ends the session with 421 after 20 error replies: a client that
    pipelines 100,000 RCPTs is told, and nothing is queued; one that stops
    at the first 452 gets its 10000 recipients queued."""
    ob = outbox(relay=None)
    rcpts = b"".join(b"RCPT TO:<r%d@example.org>\r\n" % i for i in range(100000))
    res, rss, secs = run_measured(ob, ["-bs"], input=(
        b"EHLO c\r\nMAIL FROM:<a@example.org>\r\n" + rcpts +
        b"DATA\r\nSubject: many\r\n\r\nx\r\n.\r\nQUIT\r\n"))
    assert res.returncode == 0 and res.stderr == b""
    codes = [l[:3] for l in res.stdout.split(b"\r\n") if l[3:4] == b" "]
    assert codes[:3] == [b"220", b"250", b"250"]
    assert codes[3:10003] == [b"250"] * 10000
    assert codes[10003:] == [b"452"] * 20 + [b"421"], codes[10003:]
    assert queued(ob) == []
    assert_rss(rss, 32)
    assert secs < 20, secs

    # a client that sends DATA after the first 452
    res, rss, secs = run_measured(ob, ["-bs"], input=(
        b"EHLO c\r\nMAIL FROM:<a@example.org>\r\n" + rcpts[:rcpts.index(b"RCPT TO:<r10001@")] +
        b"DATA\r\nSubject: many\r\n\r\nx\r\n.\r\nQUIT\r\n"))
    codes = [l[:3] for l in res.stdout.split(b"\r\n") if l[3:4] == b" "]
    assert codes[-5:] == [b"250", b"452", b"354", b"250", b"221"], codes[-5:]
    [qf] = queued(ob)
    assert len(rcpt_lines(qf)) == 10000
    assert_rss(rss, 32)


def to_header(n):
    """A To: field of n bare names (qualified with [mail] domain), folded
    into lines of at most 900 octets: about 7 octets a recipient, so that
    100,000 of them fit in the 1 MiB header block."""
    lines, cur = [], "To: "
    for i in range(n):
        piece = "%x," % i if i < n - 1 else "%x" % i
        if len(cur) + len(piece) > 900:
            lines.append(cur)
            cur = " "
        cur += piece
    lines.append(cur)
    return "\n".join(lines).encode() + b"\n"


def test_t_100000_recipients_are_queued_quickly_in_bounded_memory(outbox):
    ob = outbox(relay=None)
    data = to_header(100000) + b"Subject: many\n\nbody\n"
    assert len(data) < MiB
    # the timeout guards against a hang (it was quadratic: ~30 s of CPU),
    # it is not a speed figure
    res, rss, _ = run_measured(ob, ["-odq", "-t", "-i"], input=data, timeout=60)
    assert res.returncode == 0, res
    [qf] = queued(ob)
    assert len(rcpt_lines(qf)) == 100000
    assert_rss(rss, 64)


def test_t_20000_recipients_are_queued_in_bounded_memory(outbox):
    ob = outbox(relay=None)
    res, rss, secs = run_measured(ob, ["-odq", "-t", "-i"],
                                  input=to_header(20000) + b"Subject: many\n\nbody\n")
    assert res.returncode == 0, res
    [qf] = queued(ob)
    assert len(rcpt_lines(qf)) == 20000
    assert_rss(rss, 32)


def big_headers(shape):
    """10 MiB of header: many fields, or one field folded many times."""
    line = b"x" * 900
    if shape == "many fields":
        return b"".join(b"X-Pad-%d: %s\n" % (i, line) for i in range(12000))
    return b"X-Folded: start\n" + b"".join(b" " + line + b"\n" for i in range(12000))


@pytest.mark.parametrize("shape", ["many fields", "one folded field"])
def test_10_mib_header_block_is_refused_in_bounded_memory(raw, outbox, shape):
    s = raw(starttls_reply=None)
    ob = raw_outbox(outbox, s, tls="none", user=None, password=None)
    data = b"Subject: big\n" + big_headers(shape) + b"\nbody\n"
    assert len(data) > 10 * MiB
    res, rss, secs = run_measured(ob, ["-i", RCPT], input=data)
    one_line_error(res, 65, "header block is larger than 1048576 bytes",
                   "nothing was queued")
    assert ob.queue_files() == [] and s.connections == 0
    assert_rss(rss, 16)
    # -bs: 552, the rest of the message is read and dropped, and the
    # session goes on
    crlf = data.replace(b"\n", b"\r\n")
    res, rss, secs = run_measured(ob, ["-bs"], input=(
        b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" +
        crlf + b".\r\nNOOP\r\nQUIT\r\n"))
    codes = [l[:3] for l in res.stdout.split(b"\r\n") if l[3:4] == b" "]
    assert codes == [b"220", b"250", b"250", b"250", b"354", b"552", b"250", b"221"], codes
    assert b"552 5.3.4 " in res.stdout
    assert ob.queue_files() == [] and s.connections == 0
    assert_rss(rss, 16)


@pytest.mark.parametrize("phase", ["greeting", "ehlo", "mail", "final"])
def test_relay_answering_one_byte_per_second_times_out_and_keeps_the_mail(raw, outbox,
                                                                          phase):
    s = raw(starttls_reply=None, slow=[phase])
    ob = raw_outbox(outbox, s, tls="none", user=None, password=None,
                    connect_timeout=2, timeout=2, data_timeout=2)
    start = time.monotonic()
    res = ob.run(["-i", RCPT], input=MSG)
    secs = time.monotonic() - start
    assert (res.returncode, res.stderr) == (0, b""), res
    assert secs < 10, secs                      # about one timeout, not the reply
    assert len(queued(ob)) == 1                 # nothing lost
    why = mailq_reason(ob)
    assert "timed out" in why, why
    if phase in ("greeting", "ehlo"):
        assert "nothing was sent" in why
    if phase == "final":
        # the relay has the data but said nothing in time: outbox keeps the
        # mail and will send it again (at least once, outbox(8) SPOOL)
        assert s.wait_idle(15) and len(s.messages) == 1
    else:
        assert s.messages == []


ONE_GIB = 1024 * MiB
LINE = "x" * 99                 # + LF: 100 octets a line


def test_1_gib_message_is_relayed_in_under_16_mib(raw, outbox, certs):
    """The body is made by yes | head in a pipe, the relay (STARTTLS and
    AUTH, like a real submission server) only counts what it gets, and
    outbox's peak RSS is measured by /usr/bin/time -v over submission,
    commit and delivery together."""
    s = raw(tls_ctx=server_context(certs), keep_data=4096)
    ob = raw_outbox(outbox, s, data_timeout="60")
    producer = subprocess.Popen(
        ["sh", "-c", "printf 'Subject: big\\n\\n'; yes %s | head -c %d" % (LINE, ONE_GIB)],
        stdout=subprocess.PIPE)
    try:
        res, rss, secs = run_measured(ob, ["-i", RCPT], stdin=producer.stdout,
                                      timeout=300)
        producer.stdout.close()
        producer.wait(30)
        assert (res.returncode, res.stderr) == (0, b""), res
        assert_rss(rss, 16)
        assert s.wait_idle(60)
        [m] = s.messages
        assert m["tls"] and m["rcpt_tos"] == [b"<%s>" % RCPT.encode()]
        header = m["head"].index(b"\r\n\r\n") + 4
        lines, rest = divmod(ONE_GIB, len(LINE) + 1)
        body = lines * (len(LINE) + 2) + (rest + 2 if rest else 0)  # CRLF, final CRLF
        assert m["size"] == header + body, (m["size"], header + body)
        assert queued(ob) == []                 # delivered: nothing left, nothing lost
    finally:
        producer.kill()
        for f in ob.queue_files():              # pytest keeps old tmp dirs: no 1 GB
            if os.path.getsize(f) > 100 * MiB:  # left behind by a failure
                os.unlink(f)
