"""A local OAuth2 token endpoint (RFC 6749) for the outbox integration tests.

It serves the refresh_token grant (RFC 6749 section 6) over HTTPS on
loopback, with the test CA's server certificate (certs.make_certs()), and
issues access tokens that relay.Relay accepts for XOAUTH2 and
OAUTHBEARER:

    from oauth import TokenServer
    from relay import Relay
    with TokenServer(certdir) as ts, \\
         Relay(certdir, mechanisms=["XOAUTH2"], tokens=ts.valid_token) as r:
        ... outbox: token_url = ts.url, client_id = ts.client_id,
            client_secret = ts.client_secret, refresh_token = ts.refresh_token,
            ca_file = <certs ca.pem> ...
        assert ts.requests[0]["grant_type"] == "refresh_token"

It is http.server.ThreadingHTTPServer in a background thread; every
request gets its own thread (and its own TLS handshake there).

Constructor arguments (all keyword-friendly); each is also an attribute
that a test may change while the server runs:

  certdir        directory made by certs.make_certs() (created if needed)
  client_id="outbox-test-client"
  client_secret="outbox-test-secret"
                 None: a public client, which must NOT send a secret
  refresh_token="refresh-token-1"
                 the currently valid refresh token
  rotate=False   True: each refresh answers a new refresh_token and
                 invalidates the old one (.refresh_token is the new one)
  expires_in=3600
                 lifetime of issued access tokens in seconds, sent as
                 "expires_in" and enforced by valid_token(); None: not
                 sent, tokens never expire
  scope=None     a str: sent back as "scope" in the token response
  user=None      a str: valid_token() accepts tokens only for this user
                 (None: for any user)
  invalid_grant=False
                 True: a request that passes client authentication gets
                 400 {"error": "invalid_grant", "error_description":
                 "Token has been expired or revoked."} (Google's words)
  fail_status=None
                 e.g. 500 or 503: every request gets that status with
                 {"error": "server_error"} ("temporarily_unavailable" for
                 503), as from an endpoint that is down
  host="127.0.0.1", port=0
                 where to listen ("::1" works); port 0 picks a free one
  tls=True       False: plain HTTP (.url is http://...), to check that a
                 client refuses it
  cert='server'  the pair presented: 'server', 'wrong' or 'selfsigned'
                 (as relay.Relay's cert)

What a request must be, checked in this order (RFC 6749 sections 3.2,
2.3.1, 5.2 and 6); the first failure is the answer:

  path /token, else 404; method POST, else 405; a Content-Length, else
    411;
  Content-Type application/x-www-form-urlencoded (parameters such as
    charset allowed), else 400 invalid_request;
  no parameter twice, grant_type present, else 400 invalid_request;
  grant_type=refresh_token, else 400 unsupported_grant_type;
  client authentication: client_id and client_secret in the body, or
    HTTP Basic (form-urlencoded id:secret), not both; client_id must
    match; a confidential client's secret must match; a public client
    (client_secret=None) must send no secret.  Else invalid_client:
    401 with WWW-Authenticate when Basic was used, 400 otherwise;
  invalid_grant=False, refresh_token present (else 400 invalid_request)
    and equal to .refresh_token, else 400 invalid_grant.

Every answer is JSON with Content-Type application/json, Cache-Control:
no-store and Pragma: no-cache (RFC 6749 5.1).  Success is 200

    {"access_token": "...", "token_type": "Bearer", "expires_in": N,
     "refresh_token": "..." (with rotate), "scope": "..." (with scope)}

and a failure {"error": CODE, "error_description": TEXT}.

What it records (thread-safe):

  .url          https://127.0.0.1:PORT/token (http:// with tls=False;
                [::1] for IPv6)
  .port, .host
  .requests     [dict] the form of every POST (whatever its Content-Type
                or outcome), parsed: {name: value}, secrets included, so
                a test can assert them; a parameter sent twice has a list
  .headers      [dict] parallel to .requests: the request's HTTP headers,
                names lower-cased
  .issued       [str] access tokens issued, in order (unique strings)
  .connections  TCP connections accepted
  .valid_token(user, token)
                True for a token this server issued that has not expired
                (by its expires_in at issue time) and was not revoked;
                pass it as Relay(tokens=ts.valid_token)
  .revoke_access_tokens()
                make every token issued so far invalid (the relay then
                refuses it, as after a password change)
  .wait_for(n, timeout=5)
                block until at least n requests are recorded; return them
  .clear()      forget requests, headers and the connection count

Run as a script to serve until SIGTERM or SIGINT:

  /usr/bin/python3 tests/oauth.py --certdir D [--port N] [--client-id ID]
      [--client-secret S | --public] [--refresh-token T] [--rotate]
      [--expires-in N]

It prints "listening URL" (flushed) once ready, then one JSON line per
request: {"form": {...}} (secrets included: it is a test tool).
"""

import argparse
import base64
import binascii
import http.server
import json
import logging
import os
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from certs import make_certs  # noqa: E402

HOST = "127.0.0.1"
PATH = "/token"
EXPIRED_OR_REVOKED = "Token has been expired or revoked."
# Seconds a client may take for the TLS handshake and its request.
_IO_TIMEOUT = 10

log = logging.getLogger("outbox.oauth")


class _Reject(Exception):
    """An OAuth error answer: status, error code, description, headers."""

    def __init__(self, status, error, description, headers=None):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


class _HTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer that counts connections, does TLS in each
    request's thread and never looks its own name up in DNS."""

    daemon_threads = True

    def __init__(self, address, family, owner, ctx):
        self.address_family = family
        self.owner = owner
        self.ctx = ctx
        super().__init__(address, _Handler)

    def server_bind(self):
        # HTTPServer.server_bind() would call socket.getfqdn().
        socketserver.TCPServer.server_bind(self)
        self.server_name = "localhost"
        self.server_port = self.server_address[1]

    def get_request(self):
        sock, addr = super().get_request()
        self.owner._note_connection()
        if self.ctx is not None:
            # The handshake happens in the request's thread (_Handler.setup),
            # so a slow or failing client does not hold up the others.
            sock = self.ctx.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        # Failed handshakes (a client that refuses our certificate) and
        # clients that hang up are expected; anything else is shown.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, OSError)):
            log.info("%s: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive: every answer has a length
    server_version = "outbox-test-oauth/1"
    sys_version = ""

    def setup(self):
        self.request.settimeout(_IO_TIMEOUT)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def log_message(self, fmt, *args):
        log.info("%s " + fmt, self.client_address[0], *args)

    def _answer(self, status, body, headers=None):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        try:
            if self.path.split("?")[0] != PATH:
                self.close_connection = True    # its body is not read
                raise _Reject(404, "invalid_request", "Not found")
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self.close_connection = True
                raise _Reject(411, "invalid_request", "Content-Length required")
            body = self.rfile.read(int(length))
            status, answer = self.server.owner._token_request(
                {k.lower(): v for k, v in self.headers.items()}, body)
            self._answer(status, answer)
        except _Reject as e:
            self._answer(e.status, {"error": e.error, "error_description": e.description},
                         e.headers)

    def _not_post(self):
        if self.path.split("?")[0] != PATH:
            self._answer(404, {"error": "invalid_request", "error_description": "Not found"})
        else:
            self._answer(405, {"error": "invalid_request",
                               "error_description": "Use POST"}, {"Allow": "POST"})

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_post


def _form(body):
    """The form in body as {name: value}, a list for a name given twice."""
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", errors="replace"),
                                   keep_blank_values=True)
    form = {}
    for name, value in pairs:
        if name in form:
            old = form[name]
            form[name] = (old if isinstance(old, list) else [old]) + [value]
        else:
            form[name] = value
    return form


def _basic_credentials(header):
    """RFC 6749 2.3.1: "Basic base64(urlencoded id ':' urlencoded secret)"
    -> (id, secret), or None if the header is not of that form."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    cid, colon, secret = decoded.partition(":")
    if not colon:
        return None
    return urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret)


class TokenServer:
    """See the module docstring."""

    def __init__(self, certdir, client_id="outbox-test-client",
                 client_secret="outbox-test-secret", refresh_token="refresh-token-1",
                 rotate=False, expires_in=3600, scope=None, user=None,
                 invalid_grant=False, fail_status=None, host=HOST, port=0,
                 tls=True, cert="server"):
        if cert not in ("server", "wrong", "selfsigned"):
            raise ValueError("cert must be server, wrong or selfsigned")
        self.certs = make_certs(certdir)
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.rotate = rotate
        self.expires_in = expires_in
        self.scope = scope
        self.user = user
        self.invalid_grant = invalid_grant
        self.fail_status = fail_status
        self.host = host
        self.port = port
        self.tls = tls
        self.cert = cert

        self.requests = []
        self.headers = []
        self.issued = []
        self.connections = 0
        self._expiry = {}           # access token -> monotonic deadline or None
        self._cond = threading.Condition()
        self._httpd = None
        self._thread = None

    # -- life cycle ------------------------------------------------------

    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s:%d%s" % ("https" if self.tls else "http", host, self.port, PATH)

    def start(self):
        if self._httpd is not None:
            return self
        ctx = None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certs[self.cert], self.certs[self.cert + "_key"])
        family, _, _, _, addr = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM)[0]
        self._httpd = _HTTPServer(addr, family, self, ctx)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="oauth-token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- for tests and relay.Relay -------------------------------------------

    def valid_token(self, user, token):
        """Whether token is an access token issued here, not expired and
        not revoked (and user matches .user when both are given)."""
        if self.user is not None and user is not None and user != self.user:
            return False
        with self._cond:
            if token not in self._expiry:
                return False
            deadline = self._expiry[token]
        return deadline is None or time.monotonic() < deadline

    def revoke_access_tokens(self):
        with self._cond:
            self._expiry.clear()

    def wait_for(self, n, timeout=5):
        """Wait until at least n requests are recorded; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("token endpoint got %d request(s), wanted %d"
                                       % (len(self.requests), n))
                self._cond.wait(left)
            return list(self.requests)

    def clear(self):
        with self._cond:
            self.requests.clear()
            self.headers.clear()
            self.connections = 0

    # -- called from the request threads ------------------------------------

    def _note_connection(self):
        with self._cond:
            self.connections += 1

    def _token_request(self, headers, body):
        """One POST to /token: (status, JSON answer), or raise _Reject."""
        form = _form(body)
        with self._cond:
            self.requests.append(form)
            self.headers.append(headers)
            self._cond.notify_all()
            return self._decide(headers, form)

    def _decide(self, headers, form):
        if self.fail_status is not None:
            raise _Reject(self.fail_status, "temporarily_unavailable"
                          if self.fail_status == 503 else "server_error",
                          "The token endpoint is down")
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise _Reject(400, "invalid_request",
                          "Content-Type must be application/x-www-form-urlencoded")
        twice = sorted(k for k, v in form.items() if isinstance(v, list))
        if twice:
            raise _Reject(400, "invalid_request", "Repeated parameter: " + ", ".join(twice))
        if "grant_type" not in form:
            raise _Reject(400, "invalid_request", "Missing grant_type")
        if form["grant_type"] != "refresh_token":
            raise _Reject(400, "unsupported_grant_type",
                          "Unsupported grant_type: " + form["grant_type"])
        self._authenticate_client(headers, form)
        if self.invalid_grant:
            raise _Reject(400, "invalid_grant", EXPIRED_OR_REVOKED)
        if "refresh_token" not in form:
            raise _Reject(400, "invalid_request", "Missing refresh_token")
        if self.refresh_token is None or not secrets.compare_digest(
                form["refresh_token"].encode("utf-8"), self.refresh_token.encode("utf-8")):
            raise _Reject(400, "invalid_grant", EXPIRED_OR_REVOKED)
        return 200, self._issue()

    def _authenticate_client(self, headers, form):
        basic = None
        if "authorization" in headers:
            basic = _basic_credentials(headers["authorization"])
            if basic is None:
                self._bad_client(True, "Unsupported Authorization header")
        if basic is not None and ("client_secret" in form or (
                "client_id" in form and form["client_id"] != basic[0])):
            self._bad_client(True, "More than one client authentication method")
        cid, secret = basic if basic is not None else (
            form.get("client_id"), form.get("client_secret"))
        if cid is None:
            self._bad_client(basic is not None, "Missing client_id")
        if cid != self.client_id:
            self._bad_client(basic is not None, "The OAuth client was not found.")
        if self.client_secret is None:
            if secret is not None:
                self._bad_client(basic is not None,
                                 "client_secret sent by a public client")
        elif secret is None or not secrets.compare_digest(
                secret.encode("utf-8"), self.client_secret.encode("utf-8")):
            self._bad_client(basic is not None, "Unauthorized")

    @staticmethod
    def _bad_client(basic, description):
        # RFC 6749 5.2: 401 (with WWW-Authenticate) when the client used
        # the Authorization header, else 400.
        if basic:
            raise _Reject(401, "invalid_client", description,
                          {"WWW-Authenticate": 'Basic realm="token"'})
        raise _Reject(400, "invalid_client", description)

    def _issue(self):
        """A new access token (and refresh token with rotate); the answer."""
        token = "at-%d-%s" % (len(self.issued) + 1, secrets.token_urlsafe(24))
        self.issued.append(token)
        self._expiry[token] = (None if self.expires_in is None
                               else time.monotonic() + self.expires_in)
        answer = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        if self.rotate:
            self.refresh_token = "rt-%d-%s" % (len(self.issued) + 1,
                                               secrets.token_urlsafe(24))
            answer["refresh_token"] = self.refresh_token
        if self.scope is not None:
            answer["scope"] = self.scope
        return answer


# -- script mode -------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="Loopback OAuth2 token endpoint for outbox tests")
    p.add_argument("--certdir", help="certificate directory (default: a temporary one)")
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--client-id", default="outbox-test-client")
    p.add_argument("--client-secret", default="outbox-test-secret")
    p.add_argument("--public", action="store_true", help="a public client: no secret")
    p.add_argument("--refresh-token", default="refresh-token-1")
    p.add_argument("--rotate", action="store_true")
    p.add_argument("--expires-in", type=int, default=3600)
    a = p.parse_args(argv)

    certdir = a.certdir or tempfile.mkdtemp(prefix="outbox-oauth-certs.")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    server = TokenServer(certdir, client_id=a.client_id,
                         client_secret=None if a.public else a.client_secret,
                         refresh_token=a.refresh_token, rotate=a.rotate,
                         expires_in=a.expires_in, host=a.host, port=a.port)
    with server:
        print("listening %s" % server.url, flush=True)
        seen = 0
        while not stop.wait(0.2):
            with server._cond:
                new = server.requests[seen:]
            for form in new:
                print(json.dumps({"form": form}), flush=True)
            seen += len(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
