"""The queue: backoff, expiry, bounces, hold/release/delete, mailq --json.

OUTBOX_TIME_OFFSET (a documented test hook) moves the queue's clock.
"""
import email
import json
import os
import subprocess
import time

import pytest

MSG = b"Subject: queue\n\nbody\n"
DAY = 86400


def jq(ob):
    res = ob.run(["-bp", "--json"])
    assert res.returncode == 0
    return json.loads(res.stdout)


def dsn_parts(data):
    msg = email.message_from_bytes(data)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    human, status, headers = msg.get_payload()
    assert headers.get_content_type() == "text/rfc822-headers"
    return msg, status.get_payload(), headers.get_payload()


def test_backoff_doubles_with_jitter(relay, outbox):
    ob = outbox(relay(), relay={"port": 1}, queue={"retry_min": "1m", "retry_max": "1h"})
    ob.run(["-i", "bob@example.org"], input=MSG)
    for attempts, base in ((1, 60), (2, 120), (3, 240), (4, 480)):
        m = jq(ob)[0]
        assert m["attempts"] == attempts
        delay = m["next_attempt"] - m["last_attempt"]
        assert 0.8 * base <= delay <= 1.2 * base, (attempts, delay)
        ob.run(["-q"])


def test_backoff_is_capped(relay, outbox):
    ob = outbox(relay(), relay={"port": 1}, queue={"retry_min": "1m", "retry_max": "2m"})
    ob.run(["-i", "bob@example.org"], input=MSG)
    for _ in range(4):
        ob.run(["-q"])
    m = jq(ob)[0]
    assert m["next_attempt"] - m["last_attempt"] <= 1.2 * 120


def run_runner(ob, seconds, env=None):
    p = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-q1h"], env=ob.env(env),
                         stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    p.terminate()
    assert p.wait(10) == 0


def test_runner_honours_backoff_and_q_does_not(relay, outbox):
    r = relay(rcpt_rules={"bob@example.org": "451 4.3.0 later"})
    ob = outbox(r)
    ob.run(["-i", "bob@example.org"], input=MSG)
    r.rcpt_rules.clear()
    run_runner(ob, 0.5)                       # not due for a minute
    assert r.messages == [] and jq(ob)[0]["attempts"] == 1
    run_runner(ob, 0.5, env={"OUTBOX_TIME_OFFSET": "120"})
    assert len(r.wait_for(1)) == 1 and jq(ob) == []


def test_q_retries_now_whatever_the_backoff(relay, outbox):
    r = relay(rcpt_rules={"bob@example.org": "451 4.3.0 later"})
    ob = outbox(r)
    ob.run(["-i", "bob@example.org"], input=MSG)
    r.rcpt_rules.clear()
    assert ob.run(["-q"]).returncode == 0
    assert len(r.wait_for(1)) == 1


def test_expired_message_bounces_with_the_last_reply(relay, outbox):
    r = relay(rcpt_rules={"bob@example.org": "451 4.3.0 mailbox busy"})
    ob = outbox(r, queue={"max_age": "5d"})
    ob.run(["-f", "sender@example.org", "-i", "bob@example.org"], input=MSG)
    assert ob.run(["-q"], env={"OUTBOX_TIME_OFFSET": str(4 * DAY)}).returncode == 75
    assert r.messages == []
    ob.run(["-q"], env={"OUTBOX_TIME_OFFSET": str(6 * DAY)})
    bounce = r.wait_for(1)[0]
    assert (bounce["mail_from"], bounce["rcpt_tos"]) == ("", ["sender@example.org"])
    msg, status, headers = dsn_parts(bounce["data"])
    assert status[1]["Final-Recipient"] == "rfc822; bob@example.org"
    assert status[1]["Action"] == "failed" and status[1]["Status"] == "5.4.7"
    assert "expired after 6 days" in status[1]["Diagnostic-Code"]
    assert "451 4.3.0 mailbox busy" in status[1]["Diagnostic-Code"]
    assert jq(ob) == []


@pytest.mark.parametrize("why,kw,conf", [
    ("relay down", {}, {"port": 1}),
    ("wrong password", {}, {"password": "nope"}),
    ("no AUTH offered", {"offer_auth": False}, {}),
])
def test_relay_and_config_failures_never_expire_or_bounce(relay, outbox, why, kw, conf):
    r = relay(**kw)
    ob = outbox(r, relay=conf)
    ob.run(["-f", "sender@example.org", "-i", "bob@example.org"], input=MSG)
    res = ob.run(["-q"], env={"OUTBOX_TIME_OFFSET": str(30 * DAY)})
    assert res.returncode == 75
    assert r.messages == []
    m = jq(ob)
    assert len(m) == 1 and m[0]["recipients"][0]["state"] == "pending"
    assert m[0]["error"] and "nothing was sent" in m[0]["error"]


def test_permanent_failure_on_flush_bounces(relay, outbox):
    r = relay(rcpt_rules={"bob@example.org": "550 5.1.1 No such user"})
    ob = outbox(r)
    ob.run(["-odq", "-f", "sender@example.org", "-i", "bob@example.org"], input=MSG)
    assert ob.run(["-q"]).returncode == 0
    bounce = r.wait_for(1)[0]                  # delivered in the same flush
    assert bounce["mail_from"] == "" and bounce["rcpt_tos"] == ["sender@example.org"]
    msg, status, headers = dsn_parts(bounce["data"])
    assert status[0]["Reporting-MTA"].startswith("dns; ")
    assert status[1]["Status"] == "5.1.1"
    assert status[1]["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"
    assert "Subject: queue" in str(headers)
    assert jq(ob) == []


def test_null_sender_is_never_bounced(relay, outbox):
    r = relay(rcpt_rules={"bob@example.org": "550 5.1.1 No such user"})
    ob = outbox(r)
    ob.run(["-odq", "-f", "<>", "-i", "bob@example.org"], input=MSG)
    ob.run(["-q"])
    time.sleep(0.2)
    assert r.messages == []
    m = jq(ob)
    assert m[0]["recipients"][0]["state"] == "failed"
    assert b"(failed: 550 5.1.1 No such user)" in ob.mailq().stdout


def test_bounce_to_takes_local_senders_bounces(relay, outbox):
    r = relay(rcpt_rules={"bob@example.org": "550 5.1.1 No such user"})
    ob = outbox(r, mail={"rewrite_from": "never", "bounce_to": "ops@example.org"})
    ob.run(["-odq", "-f", "root", "-i", "bob@example.org"], input=MSG)
    ob.run(["-q"])
    assert r.wait_for(1)[0]["rcpt_tos"] == ["ops@example.org"]


def test_hold_release_delete(relay, outbox):
    r = relay()
    ob = outbox(r)
    for i in range(2):
        ob.run(["-odq", "-i", "r%d@example.org" % i], input=MSG)
    first, second = [m["id"] for m in jq(ob)]
    assert ob.run(["--hold", first]).returncode == 0
    assert (first + "!").encode() in ob.mailq().stdout
    assert jq(ob)[0]["held"] is True
    ob.run(["-q"])
    assert [m["rcpt_tos"] for m in r.wait_for(1)] == [["r1@example.org"]]
    assert ob.run(["-qI" + first]).returncode == 0     # held stays held
    assert len(r.messages) == 1
    assert ob.run(["--release", first]).returncode == 0
    ob.run(["-q"])
    assert len(r.wait_for(2)) == 2 and jq(ob) == []
    ob.run(["-odq", "-i", "r9@example.org"], input=MSG)
    third = jq(ob)[0]["id"]
    assert ob.run(["--delete", third]).returncode == 0
    assert jq(ob) == [] and ob.queue_files() == []


@pytest.mark.parametrize("cmd", ["--hold", "--release", "--delete"])
def test_queue_commands_on_unknown_id(outbox, cmd):
    ob = outbox()
    ob.run(["-odq", "-i", "bob@example.org"], input=MSG)
    res = ob.run([cmd, "0123456789ABCDEF"])
    assert res.returncode == 66 and b"no such message" in res.stderr


def test_delete_removes_a_corrupt_message(outbox):
    ob = outbox()
    ob.run(["-odq", "-i", "bob@example.org"], input=MSG)
    path = ob.queue_files()[0]
    with open(path, "r+b") as f:
        f.truncate(10)
    assert ob.run(["--delete", os.path.basename(path)]).returncode == 0
    assert ob.queue_files() == []


def test_mailq_json(relay, outbox):
    r = relay(rcpt_rules={"later@example.org": "451 4.3.0 Try later",
                          "gone@example.org": "550 5.1.1 Gone"})
    ob = outbox(r)
    ob.run(["-f", "<>", "-i", "ok@example.org", "later@example.org", "gone@example.org"],
           input=MSG)
    (m,) = jq(ob)
    assert m["sender"] == "" and m["attempts"] == 1 and m["held"] is False
    assert m["size"] > 0 and m["arrival"] <= time.time() + 1
    assert [(x["address"], x["state"], x["reply"]) for x in m["recipients"]] == [
        ("ok@example.org", "sent", "250 OK"),
        ("later@example.org", "pending", "451 4.3.0 Try later"),
        ("gone@example.org", "failed", "550 5.1.1 Gone")]


def test_mailq_json_empty(outbox):
    assert outbox().run(["-bp", "--json"]).stdout == b"[]\n"


def test_successful_submission_drains_what_is_due_in_the_background(relay, outbox):
    # no cron, no runner: the next successful delivery sends the backlog
    r = relay(rcpt_rules={"early@example.org": "451 4.3.0 not yet"})
    ob = outbox(r, queue={"retry_min": "1s", "retry_max": "1s"})
    assert ob.run(["-i", "early@example.org"], input=MSG).returncode == 0
    r.rcpt_rules.clear()
    time.sleep(1.3)                            # now due
    start = time.time()
    res = ob.run(["-i", "late@example.org"], input=MSG)
    assert res.returncode == 0 and time.time() - start < 1.0
    got = [m["rcpt_tos"] for m in r.wait_for(2)]
    assert got == [["late@example.org"], ["early@example.org"]]
    # the relay records the message before the background flush has read
    # its 250 and removed the queue file: give that a moment
    deadline = time.time() + 10
    while jq(ob) != [] and time.time() < deadline:
        time.sleep(0.05)
    assert jq(ob) == []


def test_background_flush_skips_what_is_not_due(relay, outbox):
    r = relay(rcpt_rules={"early@example.org": "451 4.3.0 not yet"})
    ob = outbox(r)                             # retry_min 1m: not due
    ob.run(["-i", "early@example.org"], input=MSG)
    r.rcpt_rules.clear()
    ob.run(["-i", "late@example.org"], input=MSG)
    time.sleep(0.5)
    assert [m["rcpt_tos"] for m in r.messages] == [["late@example.org"]]
    assert len(jq(ob)) == 1
