"""TLS session resumption (relay/tlscache.c): the session a relay issued is
kept in the spool as tls-NAME and offered by the next process, but only
under the settings it was verified under, never from a file that is not
the user's own 0600 one, and never written for a client certificate.
The relay records, per message, whether its TLS session was resumed."""
import base64
import os
import shutil
import ssl

MSG = b"Subject: tls session\n\nbody\n"


def deliver(ob, r, n):
    """One submission, delivered on exit; the relay's record of it."""
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0, res.stderr
    return r.wait_for(n)[n - 1]


def cache(ob, name="tls-relay"):
    return os.path.join(ob.spool, name)


def test_the_next_delivery_resumes_the_session(relay, outbox):
    r = relay()
    ob = outbox(r)
    assert deliver(ob, r, 1)["tls_resumed"] is False
    st = os.stat(cache(ob))
    assert st.st_mode & 0o777 == 0o600
    with open(cache(ob), "rb") as f:
        assert f.readline().startswith(b"outbox-tls-session-1 ")
        assert f.readline() == b"-----BEGIN SSL SESSION PARAMETERS-----\n"
    second = deliver(ob, r, 2)
    assert second["tls_resumed"] is True and second["tls"] is True
    assert second["auth_mech"] == "PLAIN"      # AUTH still happens


def session_der(ob):
    """The DER of the session in the spool's tls-relay file."""
    with open(cache(ob), "rb") as f:
        lines = f.read().splitlines()
    return base64.b64decode(b"".join(l for l in lines[1:] if not l.startswith(b"-----")))


def cert_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def test_the_file_holds_no_certificate_unless_a_pin_needs_it(relay, outbox, certs):
    # a resumed session needs no certificate, and parsing one is most of
    # the cost of reading the file; a pin is checked on every connection,
    # resumed or not, so with pin_sha256 the certificate stays
    r = relay()
    ob = outbox(r)
    deliver(ob, r, 1)
    assert cert_der(certs["server"]) not in session_der(ob)
    assert deliver(ob, r, 2)["tls_resumed"] is True
    good = check_pin(outbox(relay()))
    pinned = outbox(r, relay={"pin_sha256": good})
    deliver(pinned, r, 3)
    assert cert_der(certs["server"]) in session_der(pinned)
    # resumed, the certificate in the file is what the pin is checked on
    assert deliver(pinned, r, 4)["tls_resumed"] is True


def check_pin(ob):
    out = ob.run(["--check-relays"]).stdout.decode()
    return out.split("pin_sha256:   ")[1].split()[0]


def test_verbose_says_when_a_session_was_resumed(relay, outbox):
    r = relay()
    ob = outbox(r)
    first = ob.run(["-v", "-i", "bob@example.org"], input=MSG)
    second = ob.run(["-v", "-i", "bob@example.org"], input=MSG)
    assert b"TLS: TLSv1.3" in first.stderr and b"session resumed" not in first.stderr
    assert b"session resumed" in second.stderr


def test_implicit_tls_resumes_too(relay, outbox):
    r = relay(starttls=False, implicit_tls=True)
    ob = outbox(r)
    deliver(ob, r, 1)
    assert deliver(ob, r, 2)["tls_resumed"] is True


def test_other_settings_never_get_the_session(relay, outbox, certs, tmp_path):
    r = relay()
    ob = outbox(r)
    deliver(ob, r, 1)
    # the same CA under another path is another trust store
    ca = str(tmp_path / "ca-copy.pem")
    shutil.copy(certs["ca"], ca)
    other = outbox(r, relay={"ca_file": ca})
    assert deliver(other, r, 2)["tls_resumed"] is False
    # and the host name the certificate was checked for
    named = outbox(r, relay={"host": "localhost", "address": "127.0.0.1"})
    assert deliver(named, r, 3)["tls_resumed"] is False


def test_a_damaged_or_foreign_cache_is_ignored(relay, outbox):
    r = relay()
    ob = outbox(r)
    deliver(ob, r, 1)
    good = open(cache(ob), "rb").read()
    with open(cache(ob), "wb") as f:
        f.write(good[:len(good) // 2])             # torn
    assert deliver(ob, r, 2)["tls_resumed"] is False
    assert open(cache(ob), "rb").read() != good[:len(good) // 2]   # replaced
    with open(cache(ob), "wb") as f:
        f.write(good)
    os.chmod(cache(ob), 0o644)                      # not private: refused
    assert deliver(ob, r, 3)["tls_resumed"] is False
    with open(cache(ob), "wb") as f:
        f.write(b"garbage\n" * 10)
    assert deliver(ob, r, 4)["tls_resumed"] is False


def test_no_session_file_for_a_client_certificate(relay, outbox, certs):
    r = relay(client_cert="required")
    ob = outbox(r, relay={"client_cert": certs["client"],
                          "client_key": certs["client_key"]})
    assert deliver(ob, r, 1)["client_cn"] == "alice"
    assert deliver(ob, r, 2)["tls_resumed"] is False
    assert not os.path.exists(cache(ob))


def test_a_parallel_flush_resumes_on_every_connection(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"connections": "2"})
    deliver(ob, r, 1)                               # makes the session
    for i in range(40):
        res = ob.run(["-odq", "-i", "bob@example.org"],
                     input=b"Subject: n %d\n\nbody\n" % i)
        assert res.returncode == 0, res.stderr
    before = r.connections
    assert ob.run(["-q"], timeout=120).returncode == 0
    msgs = r.wait_for(41)[1:]
    assert r.connections - before >= 2             # both workers connected
    assert [m for m in msgs if not m["tls_resumed"]] == []


def test_a_rewritten_ca_file_is_another_trust_store(relay, outbox, certs, tmp_path):
    ca = str(tmp_path / "ca.pem")
    shutil.copy(certs["ca"], ca)
    r = relay()
    ob = outbox(r, relay={"ca_file": ca})
    deliver(ob, r, 1)
    assert deliver(ob, r, 2)["tls_resumed"] is True
    with open(ca, "ab") as f:                   # same path, new contents
        f.write(b"\n")
    assert deliver(ob, r, 3)["tls_resumed"] is False


def test_a_ca_file_without_a_certificate_is_named(relay, outbox, tmp_path):
    # the file is parsed at the first full handshake, and its failure is
    # reported as the trust store's, not as a bad certificate
    ca = tmp_path / "empty.pem"
    ca.write_bytes(b"not a certificate\n")
    r = relay()
    ob = outbox(r, relay={"ca_file": str(ca)})
    res = ob.run(["-v", "-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0                  # queued: nothing was sent
    assert r.messages == []
    assert b"cannot load ca_file %s" % str(ca).encode() in res.stderr


def test_later_connections_of_one_process_resume(relay, outbox):
    # Regression: the connection was freed without close_notify, which
    # made OpenSSL spoil the session it had cached: only the file helped
    r = relay(close_after=1)                    # one message per connection
    ob = outbox(r)
    for i in range(3):
        res = ob.run(["-odq", "-i", "bob@example.org"],
                     input=b"Subject: n %d\n\nbody\n" % i)
        assert res.returncode == 0, res.stderr
    assert not os.path.exists(cache(ob))
    assert ob.run(["-q"]).returncode == 0
    msgs = r.wait_for(3)
    assert r.connections == 3
    assert [m["tls_resumed"] for m in msgs] == [False, True, True]
