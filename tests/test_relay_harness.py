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


# -- DSN (RFC 3461): Relay(dsn=True) -----------------------------------------

def dsn_session(r, certs):
    """An smtplib session on r, past STARTTLS and AUTH when r needs them."""
    s = smtplib.SMTP(r.host, r.port, timeout=5)
    if r.starttls:
        s.starttls(context=client_ctx(certs))
    if r.offer_auth:
        s.login("alice", "s3cret")
    return s


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls+auth"])
def test_dsn_advertised_and_parameters_recorded_per_recipient(relay, certs, tls):
    r = relay(dsn=True) if tls else relay(dsn=True, starttls=False, auth=False,
                                          offer_auth=False)
    with dsn_session(r, certs) as s:
        lines = ehlo_lines(s)
        assert "DSN" in lines and lines[-1] == "HELP"   # DSN before the last line
        assert s.mail("app@example.com", ["RET=HDRS", "ENVID=Q+2Bx.1aB",
                                          "BODY=8BITMIME"])[0] == 250
        assert s.rcpt("bob@example.org", ["NOTIFY=success,FAILURE",
                                          "ORCPT=rfc822;Bob+2Bx@Example.org"])[0] == 250
        assert s.rcpt("carol@example.org")[0] == 250
        assert s.rcpt("dave@example.org", ["NOTIFY=NEVER"])[0] == 250
        assert s.data(MSG)[0] == 250
        # A second transaction in the same session starts afresh.
        assert s.mail("", ["RET=FULL"])[0] == 250
        assert s.rcpt("eve@example.org", ["orcpt=RFC822;eve@example.org"])[0] == 250
        assert s.data(MSG)[0] == 250
    m1, m2 = r.wait_for(2)
    assert m1["mail_from"] == "app@example.com" and m1["data"] == MSG
    # Order as sent; ENVID and ORCPT values keep their case, the rest is
    # upper-cased as aiosmtpd does.
    assert m1["mail_options"] == ["RET=HDRS", "ENVID=Q+2Bx.1aB", "BODY=8BITMIME"]
    assert m1["rcpt_tos"] == ["bob@example.org", "carol@example.org", "dave@example.org"]
    assert m1["rcpt_options"] == [["NOTIFY=SUCCESS,FAILURE",
                                   "ORCPT=rfc822;Bob+2Bx@Example.org"],
                                  [], ["NOTIFY=NEVER"]]
    assert m2["mail_from"] == "" and m2["mail_options"] == ["RET=FULL"]
    assert m2["rcpt_tos"] == ["eve@example.org"]
    assert m2["rcpt_options"] == [["ORCPT=RFC822;eve@example.org"]]
    assert m1["tls"] is tls and m2["tls"] is tls


def test_dsn_parameters_of_a_refused_recipient_are_not_recorded(relay, certs):
    r = relay(dsn=True, starttls=False, auth=False, offer_auth=False,
              rcpt_rules={"nobody@example.org": "550 5.1.1 No such user"})
    with dsn_session(r, certs) as s:
        s.ehlo("client.test")
        s.mail("app@example.com")
        assert s.rcpt("nobody@example.org", ["NOTIFY=FAILURE"])[0] == 550
        assert s.rcpt("bob@example.org", ["NOTIFY=DELAY"])[0] == 250
        s.data(MSG)
    (m,) = r.wait_for(1)
    assert m["rcpt_tos"] == ["bob@example.org"]
    assert m["rcpt_options"] == [["NOTIFY=DELAY"]]


@pytest.mark.parametrize("verb, params, code", [
    ("MAIL", ["RET=NONE"], 501),
    ("MAIL", ["RET="], 501),
    ("MAIL", ["RET=FULL", "RET=HDRS"], 501),          # twice
    ("MAIL", ["ENVID=a", "ENVID=a"], 501),
    ("MAIL", ["ENVID=a=b"], 501),                     # "=" is not xtext
    ("MAIL", ["ENVID=a+zz"], 501),                    # bad hexchar
    ("MAIL", ["ENVID=a+2b"], 501),                    # hexchar is upper case
    ("MAIL", ["ENVID=" + "x" * 101], 501),            # over 100
    ("MAIL", ["NOTIFY=NEVER"], 555),                  # a RCPT parameter
    ("MAIL", ["FOO=BAR"], 555),                       # still unknown
    ("RCPT", ["NOTIFY=NEVER,SUCCESS"], 501),          # NEVER stands alone
    ("RCPT", ["NOTIFY=SOMETIMES"], 501),
    ("RCPT", ["NOTIFY="], 501),
    ("RCPT", ["NOTIFY=SUCCESS", "NOTIFY=FAILURE"], 501),  # twice
    ("RCPT", ["ORCPT=bob@example.org"], 501),         # no addr-type
    ("RCPT", ["ORCPT=rfc822;"], 501),
    ("RCPT", ["ORCPT=rfc822;a=b@example.org"], 501),
    ("RCPT", ["RET=FULL"], 555),                      # a MAIL parameter
    ("RCPT", ["XFOO=1"], 555),
])
def test_dsn_bad_parameters_refused_and_session_goes_on(relay, certs, verb, params, code):
    r = relay(dsn=True, starttls=False, auth=False, offer_auth=False)
    with dsn_session(r, certs) as s:
        s.ehlo("client.test")
        if verb == "MAIL":
            assert s.mail("app@example.com", params)[0] == code
        else:
            assert s.mail("app@example.com")[0] == 250
            assert s.rcpt("bob@example.org", params)[0] == code
            assert s.rset()[0] == 250
        # The session is usable afterwards.
        assert s.sendmail("app@example.com", ["bob@example.org"], MSG) == {}
    (m,) = r.wait_for(1)
    # smtplib adds SIZE= because the relay (aiosmtpd) advertises SIZE.
    assert m["mail_options"] == ["SIZE=%d" % len(MSG)] and m["rcpt_options"] == [[]]


def test_dsn_longer_command_lines_allowed(relay, certs):
    # RFC 3461 4: MAIL may grow by 110 octets and RCPT by 500.
    r = relay(dsn=True, starttls=False, auth=False, offer_auth=False)
    sender = "l" * 64 + "@" + ".".join(["d" * 60] * 6) + ".example.com"   # 442
    orcpt = "ORCPT=rfc822;" + "+41" * 150 + "@example.org"      # 475 octets
    with dsn_session(r, certs) as s:
        s.ehlo("client.test")
        envid = "ENVID=" + "E" * 100
        assert s.mail(sender, ["RET=HDRS", envid])[0] == 250
        assert s.rcpt("bob@example.org", ["NOTIFY=SUCCESS,FAILURE,DELAY", orcpt])[0] == 250
        s.data(MSG)
    (m,) = r.wait_for(1)
    assert m["mail_options"] == ["RET=HDRS", envid]
    assert m["rcpt_options"] == [["NOTIFY=SUCCESS,FAILURE,DELAY", orcpt]]
    # Both lines are over what aiosmtpd allows without DSN (512 + 36 for
    # MAIL with SIZE and SMTPUTF8, 512 for RCPT).
    assert m["mail_from"] == sender
    assert len("MAIL FROM:<%s> RET=HDRS %s\r\n" % (sender, envid)) > 548
    assert len("RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE,DELAY %s\r\n" % orcpt) > 512


def test_without_dsn_nothing_changes(relay, certs):
    r = relay(starttls=False, auth=False, offer_auth=False)
    assert r.dsn is False
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        assert "DSN" not in ehlo_lines(s)
        code, text = s.mail("app@example.com", ["RET=FULL"])
        assert code == 555 and b"not recognized" in text
        assert s.mail("app@example.com", ["ENVID=x"])[0] == 555
        assert s.mail("app@example.com", ["BODY=8BITMIME"])[0] == 250
        assert s.rcpt("bob@example.org", ["NOTIFY=SUCCESS"])[0] == 555
        assert s.rcpt("bob@example.org", ["ORCPT=rfc822;bob@example.org"])[0] == 555
        assert s.rcpt("bob@example.org")[0] == 250
        assert s.rcpt("carol@example.org")[0] == 250
        assert s.data(MSG)[0] == 250
    (m,) = r.wait_for(1)
    assert m["mail_options"] == ["BODY=8BITMIME"]
    assert m["rcpt_options"] == [[], []]       # parallel to rcpt_tos
    # HELP still lists MAIL and RCPT with their syntax.
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.ehlo("client.test")
        assert s.docmd("HELP", "MAIL")[0] == 250


def test_dsn_help_still_has_mail_and_rcpt_syntax(relay):
    r = relay(dsn=True, starttls=False, auth=False, offer_auth=False)
    with smtplib.SMTP(r.host, r.port, timeout=5) as s:
        s.ehlo("client.test")
        code, text = s.docmd("HELP", "MAIL")
        assert code == 250 and b"MAIL FROM: <address>" in text
        code, text = s.docmd("HELP", "RCPT")
        assert code == 250 and b"RCPT TO: <address>" in text


def test_script_mode_dsn(certs, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "relay.py"), "--certdir", certs["dir"],
         "--no-starttls", "--no-auth", "--dsn"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline().decode()
        assert first.startswith("listening 127.0.0.1 "), first
        port = int(first.split()[2])
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
            assert "DSN" in ehlo_lines(s)
            s.sendmail("app@example.com", ["bob@example.org"], MSG,
                       mail_options=["RET=HDRS", "ENVID=id1"],
                       rcpt_options=["NOTIFY=NEVER"])
        envelope = proc.stdout.readline().decode()
        assert envelope == ("message 1 from=<app@example.com> to=<bob@example.org> "
                            "auth=- tls=no size=%d mail_options=[\"SIZE=%d\",\"RET=HDRS\","
                            "\"ENVID=id1\"] rcpt_options=[[\"NOTIFY=NEVER\"]]\n"
                            % (len(MSG), len(MSG)))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
