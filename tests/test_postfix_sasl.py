"""outbox against a real Postfix that requires STARTTLS and SASL AUTH.

The postfix_sasl fixture (tests/postfix.py, sasl=True) starts Postfix on
127.0.0.1 with smtpd_tls_security_level = encrypt, smtpd_tls_auth_only =
yes and smtpd_relay_restrictions = permit_sasl_authenticated, reject; Cyrus
SASL checks alice / s3cret against a sasldb in the test's own directory.
Delivered mail is read back from Postfix's Maildir, and Postfix's log tells
how each message came in.
"""
import pytest

MSG = (b"From: App <app@example.com>\n"
       b"To: Bob <bob@example.org>\n"
       b"Subject: through an authenticating Postfix\n"
       b"X-Outbox-Test: sasl\n"
       b"\n"
       b"first line\n"
       b"\n"
       b"last line\n")


def header_block(data):
    return data.split(b"\n\n", 1)[0]


def received(data):
    """Postfix's Received: header (the first one), unfolded."""
    lines = header_block(data).split(b"\n")
    i = next(i for i, line in enumerate(lines) if line.startswith(b"Received: "))
    field = [lines[i]]
    for line in lines[i + 1:]:
        if not line[:1].isspace():
            break
        field.append(line.strip())
    return b" ".join(field)


def body(data):
    return data.split(b"\n\n", 1)[1]


@pytest.mark.parametrize("args", [["-t", "-i"], ["-i", "bob@example.org"]],
                         ids=["-t", "recipient"])
def test_delivered_authenticated_over_tls(postfix_sasl, outbox, args):
    pf = postfix_sasl
    ob = outbox(pf)
    assert ob.config["relay"]["user"] == "alice"
    assert ob.config["relay"]["tls"] == "starttls"
    res = ob.run(args, input=MSG)
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""
    assert ob.queue_files() == []
    assert ob.mailq().stdout == b"Mail queue is empty\n"

    (data,) = pf.messages(1)
    head = header_block(data)
    # Postfix's own trace: STARTTLS, then AUTH as alice (ESMTPSA)
    trace = received(data)
    assert b"(using TLSv1." in trace
    assert b"(Authenticated sender: alice@postfix.test)" in trace
    assert b"with ESMTPSA id " in trace
    # the caller's headers and body arrive intact
    assert b"Delivered-To: bob@example.org\n" in head
    assert b"Return-Path: <app@example.com>\n" in head
    for line in MSG.split(b"\n\n", 1)[0].split(b"\n"):
        assert b"\n" + line + b"\n" in head + b"\n", line
    assert body(data) == b"first line\n\nlast line\n"

    log = pf.wait_log("status=sent")
    assert "sasl_method=PLAIN, sasl_username=alice@postfix.test" in log
    assert "to=<bob@example.org>, relay=virtual" in log and "status=sent" in log
    assert "authentication failed" not in log


def test_wrong_password_keeps_mail_queued_and_sends_nothing(postfix_sasl, outbox):
    pf = postfix_sasl
    ob = outbox(pf, relay={"password": "wrong-pass"})
    res = ob.run(["-t", "-i"], input=MSG)
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""
    msgs = [f for f in ob.queue_files() if not f.endswith(".st")]
    assert len(msgs) == 1
    q = ob.mailq()
    assert q.returncode == 0
    assert b"bob@example.org" in q.stdout and b"app@example.com" in q.stdout
    assert (b"authentication failed: 535 5.7.8 Error: authentication failed: "
            b"authentication failure; nothing was sent") in q.stdout
    assert b"-- 1 Kbytes in 1 Request.\n" in q.stdout
    assert b"wrong-pass" not in q.stdout

    log = pf.wait_log("SASL PLAIN authentication failed")
    assert "SASL PLAIN authentication failed: authentication failure, " \
           "sasl_username=alice@postfix.test" in log
    assert "client=localhost[127.0.0.1]" not in log       # no MAIL accepted
    assert pf.messages(1, timeout=1) == []

    # with the right password the queued message goes, exactly once
    good = outbox(pf)
    res = good.run(["-q"])
    assert res.returncode == 0, res.stderr
    assert good.queue_files() == []
    assert good.mailq().stdout == b"Mail queue is empty\n"
    (data,) = pf.messages(1)
    assert b"(Authenticated sender: alice@postfix.test)" in data
    assert body(data) == b"first line\n\nlast line\n"
    assert good.run(["-q"]).returncode == 0
    assert len(pf.messages(2, timeout=1)) == 1


def test_without_auth_the_relay_refuses_and_nothing_is_delivered(postfix_sasl, outbox):
    pf = postfix_sasl
    ob = outbox(pf, relay={"user": None, "password": None})
    assert "user" not in ob.config["relay"]
    res = ob.run(["-t", "-i"], input=MSG)
    # STARTTLS works, but without AUTH Postfix refuses the recipient for
    # good: exit 69 (EX_UNAVAILABLE), the message kept as failed
    assert res.returncode == 69
    assert res.stderr.count(b"\n") == 1
    assert res.stderr.startswith(b"sendmail: ")
    assert res.stderr.endswith(
        b": <bob@example.org> refused by the relay: 554 5.7.1 <bob@example.org>: "
        b"Recipient address rejected: Access denied\n")
    msgs = [f for f in ob.queue_files() if not f.endswith(".st")]
    assert len(msgs) == 1
    q = ob.mailq()
    assert q.returncode == 0
    assert (b"(failed: 554 5.7.1 <bob@example.org>: Recipient address rejected: "
            b"Access denied)") in q.stdout
    assert b"-- 1 Kbytes in 1 Request.\n" in q.stdout

    log = pf.wait_log("NOQUEUE: reject: RCPT")
    assert "554 5.7.1 <bob@example.org>: Recipient address rejected: Access denied; " \
           "from=<app@example.com> to=<bob@example.org>" in log
    assert "sasl_username" not in log
    assert "client=localhost[127.0.0.1]" not in log
    assert pf.messages(1, timeout=1) == []

    # failed mail is not retried by -q
    assert ob.run(["-q"]).returncode == 0
    assert pf.log_text().count("NOQUEUE: reject: RCPT") == 1
    assert len([f for f in ob.queue_files() if not f.endswith(".st")]) == 1
