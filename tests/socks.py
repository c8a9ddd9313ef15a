"""A minimal SOCKS5 proxy (RFC 1928) for the outbox integration tests.

    from socks import Socks5
    with Socks5() as proxy, Relay(certdir) as r:
        ... outbox: proxy = socks5h://127.0.0.1:<proxy.port> ...
        assert proxy.targets == [("127.0.0.1", r.port)]

Only what a client needs to reach a loopback relay: the "no
authentication required" method (0x00), the CONNECT command, and the
IPv4, IPv6 and domain name address types.  Once connected it copies bytes
both ways, one thread per direction; when one side ends its sending, the
other side's sending is shut down too (half-close), and the two sockets
are closed when both directions are done or either fails.

It only connects to loopback addresses, so a test can never reach the
network through it: any other address gets reply 0x02 "connection not
allowed by ruleset".  A domain name (socks5h://) is looked up in the
names table only, never in DNS; an unknown name gets 0x04 "host
unreachable".  A name only the proxy knows (names={'relay.test':
'127.0.0.1'}) shows that a client left the resolving to the proxy.

Constructor arguments (keyword-friendly):

  host='127.0.0.1'   address to listen on ('::1' works)
  port=0             0 picks a free port; the real one is in .port
  names=None         {name: loopback address} for domain-name targets,
                     matched case-insensitively; None means
                     {'localhost': '127.0.0.1'}
  fail_reply=None    an RFC 1928 reply code (e.g. 0x05 "connection
                     refused"): answer every CONNECT with it instead of
                     connecting

What it records (thread-safe):

  .connections  TCP connections accepted
  .methods      [[int]] the authentication methods each client offered
  .targets      [(host, port)] every CONNECT target as requested: host is
                the dotted IPv4 address, the IPv6 address text (as
                socket.inet_ntop gives it) or the domain name as sent
  .clear()      forget all of it

Replies other than success: 0x01 general failure, 0x02 not loopback,
0x04 host unreachable (name not in names), 0x05 connection refused,
0x07 command not supported (BIND, UDP ASSOCIATE), 0x08 address type not
supported; a client offering no method 0x00 gets 0x05 0xFF and is
closed.

Run as a script: /usr/bin/python3 tests/socks.py [--host H] [--port N]
prints "listening HOST PORT" (flushed) and one "connect HOST PORT" line
per CONNECT, until SIGTERM or SIGINT.
"""

import argparse
import ipaddress
import signal
import socket
import struct
import sys
import threading

HOST = "127.0.0.1"
VERSION = 5
NO_AUTH = 0x00
NO_ACCEPTABLE = 0xFF
CONNECT = 0x01
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 0x01, 0x03, 0x04
# Reply codes (RFC 1928 section 6).
SUCCEEDED = 0x00
GENERAL_FAILURE = 0x01
NOT_ALLOWED = 0x02
HOST_UNREACHABLE = 0x04
CONNECTION_REFUSED = 0x05
COMMAND_NOT_SUPPORTED = 0x07
ATYP_NOT_SUPPORTED = 0x08

# Seconds allowed for the SOCKS handshake and for connecting to a target.
_TIMEOUT = 10


class _Refused(Exception):
    """End the request with this RFC 1928 reply code."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _recv_exact(sock, n):
    """n bytes from sock; ConnectionError if it closes first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("client closed during the SOCKS handshake")
        buf += chunk
    return buf


def _reply(sock, code, bound=None):
    """Send a reply; bound is the (host, port) of our outgoing socket."""
    atyp, addr, port = ATYP_IPV4, b"\0\0\0\0", 0
    if bound is not None:
        ip = ipaddress.ip_address(bound[0])
        atyp = ATYP_IPV4 if ip.version == 4 else ATYP_IPV6
        addr, port = ip.packed, bound[1]
    sock.sendall(struct.pack("!BBBB", VERSION, code, 0, atyp) + addr
                 + struct.pack("!H", port))


class Socks5:
    """See the module docstring."""

    def __init__(self, host=HOST, port=0, names=None, fail_reply=None):
        self.host = host
        self.port = port
        self.names = {k.lower(): v for k, v in
                      (names if names is not None else {"localhost": "127.0.0.1"}).items()}
        self.fail_reply = fail_reply
        self.connections = 0
        self.methods = []
        self.targets = []
        self._lock = threading.Lock()
        self._open = set()          # live sockets, closed by stop()
        self._listener = None
        self._stop = threading.Event()
        self._thread = None

    # -- life cycle ------------------------------------------------------

    def start(self):
        if self._listener is not None:
            return self
        family, type_, proto, _, addr = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(50)
            sock.settimeout(0.1)        # so the accept loop sees stop()
        except OSError:
            sock.close()
            raise
        self._listener = sock
        self.port = sock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept_loop,
                                        name="socks5-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._listener is None:
            return
        self._stop.set()
        self._thread.join()
        self._listener.close()
        self._listener = self._thread = None
        with self._lock:
            live, self._open = list(self._open), set()
        for s in live:
            _close(s)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def clear(self):
        with self._lock:
            self.connections = 0
            self.methods.clear()
            self.targets.clear()

    # -- the proxy -------------------------------------------------------

    def _track(self, sock):
        with self._lock:
            self._open.add(sock)

    def _untrack(self, sock):
        with self._lock:
            self._open.discard(sock)
        _close(sock)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                self.connections += 1
            self._track(client)
            threading.Thread(target=self._serve, args=(client,),
                             name="socks5-client", daemon=True).start()

    def _serve(self, client):
        target = None
        try:
            client.settimeout(_TIMEOUT)
            target = self._handshake(client)
        except _Refused as e:
            try:
                _reply(client, e.code)
            except OSError:
                pass
        except (OSError, ValueError):
            pass
        if target is None:
            self._untrack(client)
            return
        client.settimeout(None)
        target.settimeout(None)
        done = []
        finished = threading.Lock()

        def pump(src, dst):
            failed = False
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
                dst.shutdown(socket.SHUT_WR)    # pass the end on
            except OSError:
                failed = True       # a reset, or the sockets were closed
            with finished:
                done.append(src)
                last = len(done) == 2
            if last or failed:
                self._untrack(client)
                self._untrack(target)

        threading.Thread(target=pump, args=(target, client),
                         name="socks5-down", daemon=True).start()
        pump(client, target)

    def _handshake(self, client):
        """Method selection and the request; the connected target socket,
        or raise _Refused / OSError."""
        ver, nmethods = _recv_exact(client, 2)
        if ver != VERSION:
            raise ConnectionError("not SOCKS5")
        methods = list(_recv_exact(client, nmethods))
        with self._lock:
            self.methods.append(methods)
        if NO_AUTH not in methods:
            client.sendall(bytes((VERSION, NO_ACCEPTABLE)))
            raise ConnectionError("no acceptable method")
        client.sendall(bytes((VERSION, NO_AUTH)))

        ver, cmd, _, atyp = _recv_exact(client, 4)
        if ver != VERSION:
            raise ConnectionError("not SOCKS5")
        if atyp == ATYP_IPV4:
            host = socket.inet_ntop(socket.AF_INET, _recv_exact(client, 4))
        elif atyp == ATYP_IPV6:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(client, 16))
        elif atyp == ATYP_DOMAIN:
            (length,) = _recv_exact(client, 1)
            host = _recv_exact(client, length).decode("idna")
        else:
            raise _Refused(ATYP_NOT_SUPPORTED)
        (port,) = struct.unpack("!H", _recv_exact(client, 2))
        if cmd != CONNECT:
            raise _Refused(COMMAND_NOT_SUPPORTED)
        with self._lock:
            self.targets.append((host, port))
        if self.fail_reply is not None:
            raise _Refused(self.fail_reply)

        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if host.lower() not in self.names:
                raise _Refused(HOST_UNREACHABLE)
            ip = ipaddress.ip_address(self.names[host.lower()])
        if not ip.is_loopback:
            raise _Refused(NOT_ALLOWED)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        target = socket.socket(family, socket.SOCK_STREAM)
        try:
            target.settimeout(_TIMEOUT)
            target.connect((str(ip), port))
        except ConnectionRefusedError:
            target.close()
            raise _Refused(CONNECTION_REFUSED)
        except OSError:
            target.close()
            raise _Refused(GENERAL_FAILURE)
        self._track(target)
        _reply(client, SUCCEEDED, target.getsockname()[:2])
        return target


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def main(argv=None):
    p = argparse.ArgumentParser(description="Loopback SOCKS5 proxy for outbox tests")
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Socks5(host=a.host, port=a.port) as proxy:
        print("listening %s %d" % (proxy.host, proxy.port), flush=True)
        seen = 0
        while not stop.wait(0.2):
            with proxy._lock:
                new = proxy.targets[seen:]
            for host, port in new:
                print("connect %s %d" % (host, port), flush=True)
            seen += len(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
