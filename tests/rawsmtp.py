"""A raw-socket SMTP server for the adversarial tests (tests/test_adversarial.py).

Unlike relay.Relay (aiosmtpd), this server is written against the socket
itself, so that a test can misbehave on purpose (inject bytes into the
STARTTLS reply, offer AUTH only before TLS, answer one byte per second,
serve only TLS 1.0/1.1) and can assert on every byte the client sent,
not only on the commands a well-behaved server parsed:

    from rawsmtp import RawSMTP, server_context
    with RawSMTP(tls_ctx=server_context(certs), caps_tls=["AUTH PLAIN"]) as s:
        ... point outbox at s (outbox(s) works: host, port, tls_mode, users) ...
    s.wait_idle()
    assert s.clear_bytes() == b"EHLO ...\\r\\nSTARTTLS\\r\\n"

Every connection runs one scripted SMTP session in its own thread.  The
script is the constructor's keywords (all optional):

  greeting="220 raw.test ESMTP raw"
  caps_clear=None
                 EHLO keywords offered before TLS; None: ["PIPELINING",
                 "8BITMIME", "STARTTLS"] when starttls_reply is set, else
                 ["PIPELINING", "8BITMIME"]
  starttls_reply="220 2.0.0 Ready to start TLS"
                 the reply to STARTTLS (None: STARTTLS is not offered and
                 gets 502); a 2xx reply starts TLS with tls_ctx unless
                 tls_ctx is None: then the server reads what the client
                 sends next (its TLS ClientHello), answers "250 raw.test
                 still in clear" and goes on in clear
  inject=b""     bytes sent right after the STARTTLS reply, in the same
                 send() call (one plaintext segment), before the handshake
                 (CVE-2021-22947 style response injection)
  tls_ctx=None   ssl.SSLContext for the server side of STARTTLS (or of
                 implicit TLS)
  implicit_tls=False
                 TLS from the first byte
  caps_tls=None  EHLO keywords after TLS; None: ["PIPELINING", "8BITMIME",
                 "AUTH PLAIN LOGIN"]
  auth_reply="235 2.7.0 Authentication successful"
                 the reply to a complete AUTH exchange
  users={"alice": "s3cret"}
                 only for outbox's config (conftest's outbox fixture takes
                 the first pair as user and password); never checked
  mail_reply, rcpt_reply, data_reply (final), quit_reply: the replies
                 (a BDAT chunk is answered with final_reply; offer CHUNKING
                 in caps_tls for the client to use it)
  slow=()        phases whose reply is sent one byte per second:
                 "greeting", "ehlo", "mail", "rcpt", "data" (the 354),
                 "final" (after the final dot)
  keep_data=65536
                 how many bytes of each message's data to keep in
                 .messages (the rest is only counted: a 1 GB message costs
                 no memory)
  record_max=1 << 20
                 how many bytes clear_in and tls_in keep, each (a test
                 that looks for what was sent in clear needs far less)

What it records, per connection (Conn objects in .conns, in accept order):

  .clear_in      bytearray: the bytes received before TLS, as received
                 (DATA included; capped at record_max)
  .tls_in        bytearray: the bytes received under TLS (capped)
  .commands      [(tls, line)] command lines (bytes, without CRLF) and the
                 lines answering AUTH challenges
  .tls           True once the TLS handshake completed
  .tls_version   e.g. "TLSv1.3", or None
  .error         the exception that ended the session, or None
  .messages      [{"mail_from": bytes, "rcpt_tos": [bytes], "size": int,
                   "head": bytes (first keep_data bytes), "tls": bool}]

and for the whole server: .conns, .messages (all connections), .clear_bytes()
(every connection's clear_in joined), .all_bytes() (clear and TLS, joined),
.wait_idle(timeout) (wait until every session thread has finished) and
.connections (count).
"""

import socket
import ssl
import threading
import time

SERVER_NAME = "raw.test"


def server_context(certs, cert="server", min_version=None, max_version=None,
                   ciphers=None):
    """A server-side SSLContext presenting certs[cert] / certs[cert+'_key'].

    min_version / max_version: ssl.TLSVersion values; ciphers: an OpenSSL
    cipher string (e.g. "DEFAULT:@SECLEVEL=0" to allow TLS 1.0/1.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    ctx.load_cert_chain(certs[cert], certs[cert + "_key"])
    return ctx


class _Closed(Exception):
    """The client closed the connection (or a read timed out)."""


class Conn:
    """One client connection and what it sent."""

    def __init__(self, server, sock, peer):
        self.server = server
        self.sock = sock
        self.peer = peer
        self.tls = False
        self.tls_version = None
        self.clear_in = bytearray()
        self.tls_in = bytearray()
        self.commands = []
        self.messages = []
        self.error = None
        self._buf = bytearray()

    # -- raw I/O -----------------------------------------------------------

    def _recv(self, n=65536):
        try:
            data = self.sock.recv(n)
        except (socket.timeout, ssl.SSLError, OSError) as e:
            raise _Closed(repr(e))
        if not data:
            raise _Closed("eof")
        return data

    def _note_in(self, data):
        rec = self.tls_in if self.tls else self.clear_in
        room = self.server.record_max - len(rec)
        if room > 0:
            rec += data[:room]

    def send(self, data, slow=False):
        """Send bytes; slow=True: one byte per second."""
        if isinstance(data, str):
            data = data.encode()
        if not slow:
            self.sock.sendall(data)
            return
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if self.server._stopping.wait(1):
                raise _Closed("server stopping")

    def reply(self, text, phase=None):
        """Send one reply (lines joined by CRLF); slow if phase is in slow."""
        self.send(text.encode() + b"\r\n", slow=phase in self.server.slow)

    def readline(self):
        """One line (bytes, without its line end); raises _Closed at EOF."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[:i + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                self.commands.append((self.tls, line))
                return line
            if len(self._buf) > 1 << 20:
                raise _Closed("line too long")
            data = self._recv()
            self._note_in(data)
            self._buf += data

    def read_chunk(self, n):
        """A BDAT chunk of exactly n bytes: (n, its first keep_data bytes)."""
        keep = self.server.keep_data
        head = bytearray(self._buf[:min(n, keep)])
        got = min(n, len(self._buf))
        del self._buf[:got]
        while got < n:
            data = self._recv(min(1 << 18, n - got))
            self._note_in(data)
            if len(head) < keep:
                head += data[:keep - len(head)]
            got += len(data)
        return n, bytes(head)

    def starttls(self, ctx):
        """Wrap the socket: the server side of a TLS handshake."""
        if self._buf:
            # bytes the client pipelined after STARTTLS: they were
            # received in clear (and are in clear_in); TLS cannot use them
            raise _Closed("client sent %r after STARTTLS" % bytes(self._buf))
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.tls = True
        self.tls_version = self.sock.version()

    def read_data(self):
        """Message data up to CRLF.CRLF: (size, head); the data is counted
        and its first keep_data bytes kept, the rest discarded."""
        keep = self.server.keep_data
        head = bytearray()
        size = 0
        tail = b"\r\n"          # the DATA command's line end
        pending = bytes(self._buf)
        self._buf = bytearray()
        rbuf = bytearray(1 << 18)       # reused: no big allocation per recv
        view = memoryview(rbuf)
        while True:
            if pending:
                chunk, pending = pending, b""   # already in clear_in/tls_in
            else:
                try:
                    n = self.sock.recv_into(rbuf)
                except (socket.timeout, ssl.SSLError, OSError) as e:
                    raise _Closed(repr(e))
                if n == 0:
                    raise _Closed("eof in DATA")
                chunk = view[:n].tobytes()
                self._note_in(chunk)
            joined = tail + chunk
            end = joined.find(b"\r\n.\r\n")
            if end >= 0:
                # data bytes: up to and including the CRLF before the dot
                # (negative when part of it was counted with the last chunk)
                size += end + 2 - len(tail)
                if len(head) < keep:
                    head += chunk[:keep - len(head)]
                del head[max(size, 0):]
                self._buf += joined[end + 5:]
                return size, bytes(head)
            size += len(chunk)
            if len(head) < keep:
                head += chunk[:keep - len(head)]
            tail = joined[-4:]


class RawSMTP:
    """A scripted SMTP server on 127.0.0.1 (see the module docstring)."""

    def __init__(self, greeting="220 %s ESMTP raw" % SERVER_NAME, caps_clear=None,
                 starttls_reply="220 2.0.0 Ready to start TLS", inject=b"",
                 tls_ctx=None, implicit_tls=False, caps_tls=None,
                 auth_reply="235 2.7.0 Authentication successful", users=None,
                 mail_reply="250 2.1.0 Ok", rcpt_reply="250 2.1.5 Ok",
                 data_reply="354 End data with <CR><LF>.<CR><LF>",
                 final_reply="250 2.0.0 Ok: queued", quit_reply="221 2.0.0 Bye",
                 slow=(), keep_data=65536, record_max=1 << 20, host="127.0.0.1",
                 read_timeout=60):
        self.greeting = greeting
        if caps_clear is None:
            caps_clear = ["PIPELINING", "8BITMIME"] + (
                ["STARTTLS"] if starttls_reply and not implicit_tls else [])
        self.caps_clear = list(caps_clear)
        self.starttls_reply = starttls_reply
        self.inject = inject
        self.tls_ctx = tls_ctx
        self.implicit_tls = implicit_tls
        self.caps_tls = (["PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN"]
                         if caps_tls is None else list(caps_tls))
        self.auth_reply = auth_reply
        self.users = {"alice": "s3cret"} if users is None else dict(users)
        self.mail_reply = mail_reply
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.final_reply = final_reply
        self.quit_reply = quit_reply
        self.slow = frozenset(slow)
        self.keep_data = keep_data
        self.record_max = record_max
        self.host = host
        self.port = 0
        self.read_timeout = read_timeout
        self.conns = []
        self._threads = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = None
        self._acceptor = None

    # -- what conftest's outbox fixture reads ------------------------------

    @property
    def tls_mode(self):
        if self.implicit_tls:
            return "tls"
        return "starttls" if self.starttls_reply else "none"

    # -- life cycle --------------------------------------------------------

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        s.settimeout(0.2)
        self._listener = s
        self.port = s.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(5)
        for c in conns:
            try:
                c.sock.close()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(self.read_timeout)
            c = Conn(self, sock, peer)
            t = threading.Thread(target=self._run, args=(c,), daemon=True)
            with self._lock:
                self.conns.append(c)
                self._threads.append(t)
            t.start()

    def _run(self, c):
        try:
            self._session(c)
        except _Closed:
            pass
        except Exception as e:          # recorded, for the test to look at
            c.error = e
        finally:
            try:
                c.sock.close()
            except OSError:
                pass

    # -- results -----------------------------------------------------------

    @property
    def connections(self):
        with self._lock:
            return len(self.conns)

    @property
    def messages(self):
        with self._lock:
            return [m for c in self.conns for m in c.messages]

    def wait_idle(self, timeout=10):
        """Wait until every session so far has ended."""
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def clear_bytes(self):
        with self._lock:
            return b"".join(bytes(c.clear_in) for c in self.conns)

    def all_bytes(self):
        with self._lock:
            return b"".join(bytes(c.clear_in) + bytes(c.tls_in) for c in self.conns)

    # -- the scripted session ----------------------------------------------

    def _ehlo(self, c, name):
        caps = self.caps_tls if c.tls else self.caps_clear
        lines = ["%s Hello %s" % (SERVER_NAME, name)] + caps
        text = "\r\n".join("250%s%s" % ("-" if i < len(lines) - 1 else " ", l)
                           for i, l in enumerate(lines))
        c.reply(text, "ehlo")

    def _auth(self, c, words):
        mech = words[1].upper() if len(words) > 1 else b""
        if mech == b"LOGIN":
            if len(words) < 3:
                c.reply("334 VXNlcm5hbWU6")
                c.readline()
            c.reply("334 UGFzc3dvcmQ6")
            c.readline()
        elif len(words) < 3:            # PLAIN without initial response etc.
            c.reply("334 ")
            c.readline()
        c.reply(self.auth_reply)

    def _session(self, c):
        if self.implicit_tls:
            c.starttls(self.tls_ctx)
        c.reply(self.greeting, "greeting")
        mail_from, rcpts = None, []
        while not self._stopping.is_set():
            line = c.readline()
            words = line.split()
            verb = words[0].upper() if words else b""
            if verb in (b"EHLO", b"HELO"):
                self._ehlo(c, (words[1] if len(words) > 1 else b"?").decode(
                    "ascii", "replace"))
            elif verb == b"STARTTLS" and not c.tls and self.starttls_reply:
                c.send(self.starttls_reply.encode() + b"\r\n" + self.inject)
                if self.starttls_reply.startswith("2") and self.tls_ctx is not None:
                    c.starttls(self.tls_ctx)
                elif self.starttls_reply.startswith("2"):
                    # no TLS after all: take what the client sends (its
                    # ClientHello) and answer in clear
                    c._note_in(c._recv())
                    c.reply("250 %s still in clear" % SERVER_NAME)
            elif verb == b"AUTH":
                self._auth(c, words)
            elif verb == b"MAIL":
                mail_from, rcpts = line[10:], []
                c.reply(self.mail_reply, "mail")
            elif verb == b"RCPT":
                rcpts.append(line[8:])
                c.reply(self.rcpt_reply, "rcpt")
            elif verb == b"DATA":
                c.reply(self.data_reply, "data")
                if not self.data_reply.startswith("354"):
                    continue
                size, head = c.read_data()
                c.messages.append({"mail_from": mail_from, "rcpt_tos": rcpts,
                                   "size": size, "head": head, "tls": c.tls})
                c.reply(self.final_reply, "final")
            elif verb == b"BDAT" and len(words) > 1:
                size, head = c.read_chunk(int(words[1]))
                c.messages.append({"mail_from": mail_from, "rcpt_tos": rcpts,
                                   "size": size, "head": head, "tls": c.tls,
                                   "bdat": True})
                c.reply(self.final_reply, "final")
            elif verb in (b"RSET", b"NOOP"):
                c.reply("250 2.0.0 Ok")
            elif verb == b"QUIT":
                c.reply(self.quit_reply)
                return
            else:
                c.reply("502 5.5.1 Error: command not implemented")
