"""Delivery outcomes: what is sent, what is kept, and the exit status.

Every failure before the relay has accepted the message leaves it queued,
with exit 0 and nothing sent in clear or unauthenticated.
"""
import os
import stat
import subprocess

import pytest

from postfix import free_port

MSG = b"Subject: test\n\nhello\n"


def assert_nothing_sent(r):
    assert r.messages == []
    assert not any(c.upper().startswith(("MAIL", "RCPT", "DATA")) for c in r.commands)


def assert_queued(ob, text=None):
    assert len([f for f in ob.queue_files() if not f.endswith(".st")]) == 1
    q = ob.mailq()
    assert q.returncode == 0 and b"bob@example.org" in q.stdout
    if text:
        assert text in q.stdout, q.stdout


@pytest.mark.parametrize("kw,why", [
    ({"cert": "selfsigned"}, b"certificate"),
    ({"cert": "wrong"}, b"certificate"),
    ({"starttls": False, "auth": False}, b"STARTTLS"),
    ({"offer_auth": False}, b"did not offer AUTH"),
])
def test_tls_or_auth_problem_sends_nothing_and_keeps_mail(relay, outbox, kw, why):
    r = relay(**kw)
    ob = outbox(r, relay={"tls": "starttls"})
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""
    assert_nothing_sent(r)
    assert_queued(ob, why)


def test_wrong_password_sends_nothing_and_keeps_mail(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"password": "wrong"})
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0
    assert_nothing_sent(r)
    assert_queued(ob, b"authentication failed")
    assert b"wrong" not in ob.mailq().stdout


def test_implicit_tls(relay, outbox):
    r = relay(implicit_tls=True)
    ob = outbox(r)
    assert ob.config["relay"]["tls"] == "tls"
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0, res.stderr
    assert r.wait_for(1)[0]["tls"]
    assert ob.queue_files() == []


def test_tls_none_to_loopback_relay(relay, outbox):
    r = relay(starttls=False, auth=False)
    ob = outbox(r, relay={"user": None, "password": None})
    assert ob.config["relay"]["tls"] == "none"
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0, res.stderr
    assert r.wait_for(1)[0]["tls"] is False


def test_relay_down_then_up_then_flush_delivers_exactly_once(relay, outbox):
    port = free_port()
    ob = outbox(relay(), relay={"port": port})
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0 and res.stderr == b""
    assert_queued(ob, b"cannot connect")
    r = relay(port=port)
    res = ob.run(["-q"])
    assert res.returncode == 0, res.stderr
    assert len(r.wait_for(1)) == 1
    assert ob.queue_files() == []
    assert ob.run(["-q"]).returncode == 0
    assert len(r.messages) == 1
    assert ob.mailq().stdout == b"Mail queue is empty\n"


def test_flush_with_relay_still_down_exits_75_and_keeps_mail(relay, outbox):
    ob = outbox(relay(), relay={"port": free_port()})
    ob.run(["-i", "bob@example.org"], input=MSG)
    res = ob.run(["-q"])
    assert res.returncode == 75
    assert_queued(ob)


def test_all_recipients_rejected_exits_69_and_keeps_failed(relay, outbox):
    r = relay(rcpt_rules={"*": "550 5.1.1 No such user"})
    ob = outbox(r)
    res = ob.run(["-i", "bob@example.org", "carol@example.org"], input=MSG)
    assert res.returncode == 69
    assert b"550 5.1.1 No such user" in res.stderr
    assert r.messages == []
    q = ob.mailq().stdout
    assert b"(failed: 550 5.1.1 No such user)" in q
    # failed mail is not retried by itself
    assert ob.run(["-q"]).returncode == 0
    assert r.messages == []


def test_rejection_after_data_exits_69(relay, outbox):
    r = relay(data_reply="554 5.7.1 Spam")
    ob = outbox(r)
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 69
    assert b"554 5.7.1 Spam" in res.stderr
    assert b"(failed: 554 5.7.1 Spam)" in ob.mailq().stdout


def test_partial_acceptance_exits_0_reports_and_bounces_the_rejected(relay, outbox):
    import email
    r = relay(rcpt_rules={"nobody@example.org": "550 5.1.1 Unknown"})
    ob = outbox(r)
    res = ob.run(["-i", "bob@example.org", "nobody@example.org"], input=MSG)
    assert res.returncode == 0
    assert b"nobody@example.org" in res.stderr and b"550 5.1.1 Unknown" in res.stderr
    msgs = r.wait_for(2)                    # the message, then the bounce
    assert msgs[0]["rcpt_tos"] == ["bob@example.org"]
    assert (msgs[1]["mail_from"], msgs[1]["rcpt_tos"]) == ("", ["app@example.com"])
    dsn = email.message_from_bytes(msgs[1]["data"])
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    status = dsn.get_payload()[1].get_payload()
    per_rcpt = status[1]
    assert per_rcpt["Final-Recipient"] == "rfc822; nobody@example.org"
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 Unknown"
    assert ob.mailq().stdout == b"Mail queue is empty\n"


def test_deferred_recipient_is_retried_alone(relay, outbox):
    r = relay(rcpt_rules={"later@example.org": "451 4.3.0 Try later"})
    ob = outbox(r)
    res = ob.run(["-i", "bob@example.org", "later@example.org"], input=MSG)
    assert res.returncode == 0 and res.stderr == b""
    assert r.wait_for(1)[0]["rcpt_tos"] == ["bob@example.org"]
    q = ob.mailq().stdout
    assert b"(451 4.3.0 Try later)" in q and b"later@example.org" in q
    r.rcpt_rules.clear()
    assert ob.run(["-q"]).returncode == 0
    msgs = r.wait_for(2)
    assert msgs[1]["rcpt_tos"] == ["later@example.org"]
    assert ob.queue_files() == []


def test_transient_421_reply_keeps_mail(relay, outbox):
    r = relay(rcpt_rules={"*": "421 4.7.0 closing"})
    ob = outbox(r)
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0
    assert_queued(ob, b"421")


def test_no_relay_configured_queues_and_tells_once(outbox):
    ob = outbox()
    first = ob.run(["-i", "bob@example.org"], input=MSG)
    second = ob.run(["-i", "bob@example.org"], input=MSG)
    assert first.returncode == 0 and second.returncode == 0
    assert b"no relay configured" in first.stderr
    assert second.stderr == b""
    assert len(ob.queue_files()) == 2


def test_odq_queues_without_trying(relay, outbox):
    r = relay()
    ob = outbox(r)
    res = ob.run(["-odq", "-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0 and res.stderr == b""
    assert r.connections == 0
    assert ob.run(["-q"]).returncode == 0
    assert len(r.wait_for(1)) == 1


def test_flush_reuses_one_connection_for_many_messages(relay, outbox):
    r = relay()
    ob = outbox(r)
    for i in range(5):
        assert ob.run(["-odq", "-i", "bob%d@example.org" % i], input=MSG).returncode == 0
    assert ob.run(["-q"]).returncode == 0
    assert len(r.wait_for(5)) == 5
    assert r.connections == 1
    assert [m["rcpt_tos"] for m in r.messages] == [["bob%d@example.org" % i] for i in range(5)]


def test_qI_flushes_one_message(relay, outbox):
    r = relay()
    ob = outbox(r)
    for i in range(2):
        ob.run(["-odq", "-i", "bob%d@example.org" % i], input=MSG)
    first = os.path.basename(ob.queue_files()[0])
    assert ob.run(["-qI" + first]).returncode == 0
    assert [m["rcpt_tos"] for m in r.wait_for(1)] == [["bob0@example.org"]]
    assert len(ob.queue_files()) == 1


def test_two_concurrent_flushes_deliver_exactly_once(relay, outbox):
    r = relay()
    ob = outbox(r)
    n = 40
    for i in range(n):
        ob.run(["-odq", "-i", "rcpt%d@example.org" % i], input=MSG)
    procs = [subprocess.Popen([ob.binary, "-C", ob.conf_path, "-q"], env=ob.env())
             for _ in range(2)]
    assert all(p.wait(60) in (0, 75) for p in procs)
    got = sorted(m["rcpt_tos"][0] for m in r.wait_for(n))
    assert got == sorted("rcpt%d@example.org" % i for i in range(n))
    assert ob.queue_files() == []


def test_sigkill_mid_input_queues_nothing(relay, outbox):
    r = relay()
    ob = outbox(r)
    p = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-i", "bob@example.org"],
                         stdin=subprocess.PIPE, env=ob.env())
    p.stdin.write(b"Subject: half\n\n" + b"x" * 100000)
    p.stdin.flush()
    p.kill()
    p.wait()
    assert ob.queue_files() == []
    assert ob.mailq().stdout == b"Mail queue is empty\n"
    assert ob.run(["-q"]).returncode == 0
    assert r.messages == []


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_mid_input_queues_nothing(relay, outbox, sig):
    import signal
    r = relay()
    ob = outbox(r)
    p = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-i", "bob@example.org"],
                         stdin=subprocess.PIPE, env=ob.env())
    p.stdin.write(b"Subject: half\n\nsome")
    p.stdin.flush()
    p.send_signal(getattr(signal, sig))
    p.wait()
    assert p.returncode != 0
    assert ob.queue_files() == []


def test_world_readable_config_with_password_is_refused(relay, outbox):
    r = relay()
    ob = outbox(r)
    os.chmod(ob.conf_path, 0o644)
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 78
    assert b"readable by everyone" in res.stderr and b"chmod" in res.stderr
    assert ob.queue_files() == [] and r.connections == 0


def test_group_readable_config_is_allowed(relay, outbox):
    r = relay()
    ob = outbox(r)
    os.chmod(ob.conf_path, 0o640)
    assert ob.run(["-i", "bob@example.org"], input=MSG).returncode == 0


def test_world_readable_password_file_keeps_mail_and_says_why(relay, outbox, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    os.chmod(pw, 0o644)
    r = relay()
    ob = outbox(r, relay={"password": None, "password_file": str(pw)})
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 0
    assert r.connections == 0
    assert_queued(ob, b"readable by everyone")
    os.chmod(pw, 0o600)
    assert ob.run(["-q"]).returncode == 0
    assert len(r.wait_for(1)) == 1


def test_password_command(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"password": None, "password_command": "echo s3cret"})
    assert ob.run(["-i", "bob@example.org"], input=MSG).returncode == 0
    assert r.wait_for(1)[0]["auth_user"] == "alice"


def test_mailq_layout(relay, outbox):
    ob = outbox(relay(), relay={"port": free_port()})
    ob.run(["-f", "sender@example.org", "-i", "bob@example.org"], input=MSG)
    out = ob.mailq().stdout.decode()
    lines = out.splitlines()
    assert lines[0].split() == ["-Queue", "ID-", "--Size--", "----Arrival", "Time----",
                                "-Sender/Recipient-------"]
    qid, size = lines[1].split()[:2]
    assert qid == os.path.basename(ob.queue_files()[0])
    assert int(size) > 0 and lines[1].endswith("sender@example.org")
    assert "cannot connect" in lines[2]
    assert lines[3].strip() == "bob@example.org"
    assert lines[-1] == "-- 1 Kbytes in 1 Request."


def test_mailq_on_missing_spool_says_empty_and_creates_nothing(outbox):
    ob = outbox()
    res = ob.mailq()
    assert (res.returncode, res.stdout) == (0, b"Mail queue is empty\n")
    assert not os.path.exists(ob.spool)


def test_spool_files_are_private(outbox):
    ob = outbox()
    ob.run(["-i", "bob@example.org"], input=MSG)
    for path in [ob.spool, os.path.join(ob.spool, "q")] + ob.queue_files():
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, path
