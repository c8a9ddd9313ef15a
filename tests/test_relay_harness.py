"""Self-tests of the test harness (certs.py, relay.py) with Python's
smtplib as the client; none of these needs the sendmail binary."""

import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

MSG = (b"From: app@example.com\r\n"
       b"To: bob@example.org\r\n"
       b"Subject: harness\r\n"
       b"\r\n"
       b"Hello.\r\n"
       b".a line that needs dot-stuffing\r\n"
       b"..two dots\r\n"
       b"8bit: \xc3\xa9\r\n")


def client_ctx(certs):
    """A verifying client context that trusts only the test CA."""
    return ssl.create_default_context(cafile=certs["ca"])


def ehlo_lines(s):
    code, text = s.ehlo("client.test")
    assert code == 250
    return text.decode().splitlines()


def test_starttls_auth_plain_delivery_recorded_exactly(relay, certs):
    r = relay()
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        before = ehlo_lines(s)
        assert "STARTTLS" in before
        assert not any(line.startswith("AUTH") for line in before)
        s.starttls(context=client_ctx(certs))
        after = ehlo_lines(s)
        assert "AUTH LOGIN PLAIN" in after and "STARTTLS" not in after
        s.login("alice", "s3cret")          # smtplib picks AUTH PLAIN
        refused = s.sendmail("app@example.com", ["bob@example.org"], MSG,
                             mail_options=["BODY=8BITMIME"])
        assert refused == {}
    (m,) = r.wait_for(1)
    assert m["data"] == MSG
    assert m["mail_from"] == "app@example.com"
    assert m["rcpt_tos"] == ["bob@example.org"]
    assert "BODY=8BITMIME" in m["mail_options"]
    assert m["auth_user"] == "alice"
    assert m["tls"] is True
    # Commands are recorded, with the AUTH credentials redacted.
    assert "STARTTLS" in r.commands
    assert "AUTH PLAIN <redacted>" in r.commands
    assert not any("AGFsaWNl" in c for c in r.commands)   # base64 of \0alice
    # Recorded as sent; smtplib happens to send lower-case verbs.
    assert any(c.upper().startswith("MAIL FROM:<APP@EXAMPLE.COM>")
               for c in r.commands)


def test_auth_login_and_wrong_password(relay, certs):
    r = relay()
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.starttls(context=client_ctx(certs))
        s.ehlo("client.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("alice", "wrong")
        assert e.value.smtp_code == 535
        # AUTH LOGIN, the two-challenge way.
        s.user, s.password = "alice", "s3cret"
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        s.sendmail("app@example.com", ["bob@example.org"], MSG)
    assert r.wait_for(1)[0]["auth_user"] == "alice"


def test_mail_and_auth_before_starttls_refused(relay):
    r = relay()
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.ehlo("client.test")
        assert s.mail("app@example.com")[0] == 530
        assert s.docmd("AUTH", "PLAIN AGFsaWNlAHMzY3JldA==")[0] == 530
        assert s.docmd("HELO", "client.test")[0] == 530
    assert r.messages == []
    assert "AUTH PLAIN <redacted>" in r.commands


def test_auth_required_before_mail(relay, certs):
    r = relay()
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.starttls(context=client_ctx(certs))
        s.ehlo("client.test")
        code, text = s.mail("app@example.com")
        assert code == 530 and b"Authentication required" in text


def test_rcpt_rules(relay, certs):
    r = relay(rcpt_rules={"Nobody@Example.com": "550 5.1.1 No such user",
                          "later*": "451 4.3.0 Try later"})
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.starttls(context=client_ctx(certs))
        s.login("alice", "s3cret")
        refused = s.sendmail("app@example.com",
                             ["nobody@example.com", "later-1@example.org",
                              "ok@example.org"], MSG)
    assert refused == {"nobody@example.com": (550, b"5.1.1 No such user"),
                       "later-1@example.org": (451, b"4.3.0 Try later")}
    assert r.wait_for(1)[0]["rcpt_tos"] == ["ok@example.org"]


def test_data_reply_rejects_and_records_nothing(relay, certs):
    r = relay(data_reply="554 5.7.1 Rejected")
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.starttls(context=client_ctx(certs))
        s.login("alice", "s3cret")
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("app@example.com", ["bob@example.org"], MSG)
        assert e.value.smtp_code == 554
    assert r.messages == []
    assert "DATA" in [c.upper() for c in r.commands]


def test_implicit_tls(relay, certs):
    r = relay(implicit_tls=True)
    assert r.tls_mode == "tls"
    with smtplib.SMTP_SSL(r.host, r.port, timeout=5,
                          context=client_ctx(certs)) as s:
        lines = ehlo_lines(s)
        assert "STARTTLS" not in lines
        assert "AUTH LOGIN PLAIN" in lines
        # AUTH is required here too.
        assert s.mail("app@example.com")[0] == 530
        s.rset()
        s.login("alice", "s3cret")
        s.sendmail("app@example.com", ["bob@example.org"], MSG)
    (m,) = r.wait_for(1)
    assert m["tls"] is True and m["auth_user"] == "alice" and m["data"] == MSG


def test_offer_auth_false(relay, certs):
    r = relay(offer_auth=False)
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.starttls(context=client_ctx(certs))
        assert not any(line.startswith("AUTH") for line in ehlo_lines(s))
        assert s.docmd("AUTH", "PLAIN AGFsaWNlAHMzY3JldA==")[0] == 502
        s.sendmail("app@example.com", ["bob@example.org"], MSG)
    (m,) = r.wait_for(1)
    assert m["auth_user"] is None and m["tls"] is True


def test_plain_relay_without_tls(relay):
    r = relay(starttls=False, auth=False)
    assert r.tls_mode == "none"
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        lines = ehlo_lines(s)
        assert "STARTTLS" not in lines
        assert not any(line.startswith("AUTH") for line in lines)
        s.sendmail("app@example.com", ["bob@example.org"], MSG)
    (m,) = r.wait_for(1)
    assert m["tls"] is False and m["auth_user"] is None


def test_connection_counting(relay, certs):
    r = relay(implicit_tls=True)
    assert r.connections == 0
    with smtplib.SMTP_SSL(r.host, r.port, timeout=5, context=client_ctx(certs)):
        pass
    # A client that gives up during the TLS handshake still counts.
    socket.create_connection((r.host, r.port), timeout=5).close()
    with smtplib.SMTP_SSL(r.host, r.port, timeout=5, context=client_ctx(certs)):
        pass
    assert r.connections == 3
    r.clear()
    assert r.connections == 0 and r.commands == []


@pytest.mark.parametrize("cert, error", [("wrong", "match"),
                                         ("selfsigned", "self-signed")])
def test_bad_certificates_fail_verification(relay, certs, cert, error):
    r = relay(cert=cert)
    with smtplib.SMTP("localhost", r.port, timeout=5) as s:
        with pytest.raises(ssl.SSLCertVerificationError, match=error):
            s.starttls(context=client_ctx(certs))


def test_record_dir_and_wait_for_timeout(relay, certs, tmp_path):
    rec = tmp_path / "rec"
    r = relay(record_dir=str(rec))
    with pytest.raises(TimeoutError):
        r.wait_for(1, timeout=0.2)
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.starttls(context=client_ctx(certs))
        s.login("alice", "s3cret")
        s.sendmail("", ["bob@example.org"], MSG)
    r.wait_for(1)
    assert (rec / "1.eml").read_bytes() == MSG
    env = json.loads((rec / "1.json").read_text())
    assert env["mail_from"] == "" and env["rcpt_tos"] == ["bob@example.org"]
    assert env["size"] == len(MSG)


def test_script_mode(certs, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "relay.py"), "--certdir", certs["dir"],
         "--no-starttls", "--no-auth", "--record-dir", str(tmp_path / "rec")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline().decode()
        assert first.startswith("listening 127.0.0.1 "), first
        port = int(first.split()[2])
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
            s.sendmail("app@example.com", ["bob@example.org"], MSG)
        envelope = proc.stdout.readline().decode()
        assert envelope.startswith("message 1 from=<app@example.com> "
                                   "to=<bob@example.org> auth=- tls=no")
        body = b"".join(proc.stdout.readline() for _ in MSG.splitlines())
        assert body == MSG
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert (tmp_path / "rec" / "1.eml").read_bytes() == MSG
