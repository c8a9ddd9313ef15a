"""pytest fixtures for the outbox integration tests.

Run from the repository root with Debian's interpreter:
    /usr/bin/python3 -m pytest -q tests

Fixtures:

  certs    (session) dict of paths from certs.make_certs(): ca, ca_key,
           server, server_key, wrong, wrong_key, selfsigned,
           selfsigned_key, dir.

  relay    factory: relay(**kwargs) starts a relay.Relay on 127.0.0.1
           with the session's certificates and returns it; every relay
           started is stopped at teardown.  kwargs are Relay's
           (starttls, implicit_tls, cert, auth, users, offer_auth,
           rcpt_rules, data_reply, record_dir, port).

  outbox   factory: outbox(relay=r, **sections) writes a config file
           (mode 0600) and returns an Outbox helper for ./sendmail.
           See Outbox and the outbox fixture below.
"""

import os
import subprocess

import pytest

from certs import make_certs
from relay import Relay

# OUTBOX_SENDMAIL lets `make check-asan` run the suite on a sanitizer build.
SENDMAIL = os.path.abspath(os.environ.get("OUTBOX_SENDMAIL") or
                           os.path.join(os.path.dirname(__file__), "..", "sendmail"))

_UNSET = object()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def relay(certs):
    started = []

    def start(**kwargs):
        r = Relay(certs["dir"], **kwargs)
        started.append(r)
        return r.start()

    yield start
    for r in started:
        r.stop()


class Outbox:
    """Runs the built ./sendmail against one config file.

    Attributes: binary, conf_path, spool (the [queue] dir), home (the
    HOME given to the program), relay (the Relay or None), config (the
    sections written, as {section: {key: value}}).
    """

    def __init__(self, binary, conf_path, spool, home, relay, config):
        self.binary = binary
        self.conf_path = conf_path
        self.spool = spool
        self.home = home
        self.relay = relay
        self.config = config

    def env(self, extra=None):
        """The clean environment run() uses; extra adds keys, and a
        None value removes one."""
        env = {"HOME": self.home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "LC_ALL": "C"}
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def run(self, args=(), input=None, env=None, timeout=30, use_conf=True):
        """Run [sendmail, '-C', conf, *args]; return a CompletedProcess
        with stdout/stderr as bytes.  input: bytes (or str, encoded
        UTF-8) for stdin; None gives an empty stdin.  env: extra
        environment (None values remove).  use_conf=False leaves out
        '-C conf' (to test how the config file is found)."""
        cmd = [self.binary]
        if use_conf:
            cmd += ["-C", self.conf_path]
        cmd += [str(a) for a in args]
        if isinstance(input, str):
            input = input.encode("utf-8")
        return subprocess.run(
            cmd, input=input if input is not None else b"",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env(env), timeout=timeout)

    def mailq(self, **kwargs):
        """sendmail -bp"""
        return self.run(["-bp"], **kwargs)

    def queue_files(self):
        """Sorted paths of all files under <spool>/q ([] if no such dir)."""
        qdir = os.path.join(self.spool, "q")
        found = []
        for dirpath, _dirs, files in os.walk(qdir):
            found += [os.path.join(dirpath, f) for f in files]
        return sorted(found)


@pytest.fixture
def outbox(tmp_path, certs):
    """Factory for Outbox helpers.

        ob = outbox(relay=r)                         # r from the relay fixture
        ob = outbox(r, relay={'user': None, 'password': None},
                    mail={'domain': 'example.org'}, aliases={'root': 'a@b'})
        ob = outbox(relay=None)                      # no relay configured

    The server is given positionally or as relay=<Relay or None>; any
    other keyword (and relay=<dict> once the server is given
    positionally) names a config section: a dict updates it, a None
    value in it removes that key, and a section given as None is left
    out entirely.  Default file:

        [relay]                  (only when a relay server is given)
        host = 127.0.0.1
        port = <r.port>
        tls = starttls | tls | none       (from the relay's mode)
        ca_file = <certs ca.pem>
        user = alice                      (first of r.users, if any)
        password = s3cret
        [mail]
        from = app@example.com
        domain = example.com
        [queue]
        dir = <tmp_path>/spool

    Empty sections are not written.  Several outbox() calls in one test
    write separate config files (outbox.conf, outbox2.conf, ...) but
    share the spool and HOME, so one can queue and another deliver.
    """
    if not os.access(SENDMAIL, os.X_OK):
        pytest.fail("%s is missing or not executable: build it first (make)"
                    % SENDMAIL, pytrace=False)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    spool = str(tmp_path / "spool")
    count = [0]

    def make(server=_UNSET, **sections):
        if server is _UNSET:
            server = None
            if "relay" in sections and not isinstance(sections["relay"], dict):
                server = sections.pop("relay")
        if server is not None and not hasattr(server, "tls_mode"):
            raise TypeError("outbox(): the relay must be a Relay, a Postfix or None")

        config = {"relay": {}, "mail": {"from": "app@example.com",
                                        "domain": "example.com"},
                  "queue": {"dir": spool}}
        if server is not None:
            config["relay"] = {"host": server.host, "port": str(server.port),
                               "tls": server.tls_mode, "ca_file": certs["ca"]}
            if server.users:
                user, password = next(iter(server.users.items()))
                config["relay"].update(user=user, password=password)

        for name, changes in sections.items():
            if changes is None:
                config.pop(name, None)
                continue
            sect = config.setdefault(name, {})
            for key, value in changes.items():
                if value is None:
                    sect.pop(key, None)
                else:
                    sect[key] = str(value)

        count[0] += 1
        conf_path = str(tmp_path / ("outbox.conf" if count[0] == 1
                                    else "outbox%d.conf" % count[0]))
        text = "".join(
            "[%s]\n%s\n" % (name, "".join("%s = %s\n" % kv for kv in sect.items()))
            for name, sect in config.items() if sect)
        fd = os.open(conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(conf_path, 0o600)      # in case it existed with other bits
        return Outbox(SENDMAIL, conf_path, spool, str(home), server, config)

    return make


@pytest.fixture
def postfix(certs):
    """A real Postfix on loopback (tests/postfix.py), stopped afterwards."""
    import postfix as pf
    if not pf.available():
        pytest.skip("needs root and the postfix package (install.sh installs it)")
    server = pf.Postfix(certs).start()
    yield server
    server.stop()


@pytest.fixture
def postfix_sasl(certs):
    """A real Postfix on loopback that requires STARTTLS and SASL AUTH
    (Cyrus, sasldb in its temp directory; users {"alice": "s3cret"}),
    stopped afterwards."""
    import postfix as pf
    if not pf.sasl_available():
        pytest.skip("needs root, postfix with Cyrus SASL, sasl2-bin and "
                    "libsasl2-modules(-db) (install.sh installs them)")
    server = pf.Postfix(certs, sasl=True).start()
    yield server
    server.stop()
