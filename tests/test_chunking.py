"""CHUNKING (RFC 3030): a relay that offers CHUNKING and PIPELINING gets a
message of up to 1 MB as "BDAT size LAST" right after the RCPTs, its bytes
as they are (no dot-stuffing, no final dot): one round trip per message.
Without PIPELINING, or for a larger message, DATA is used. The replies to
BDAT decide the recipients' fate like the reply after the final dot.
Each test starts its own raw server (tests/rawsmtp.py) or a real Postfix."""
import json

import pytest

from rawsmtp import RawSMTP, server_context

TIMEOUTS = {"connect_timeout": "5", "timeout": "5", "data_timeout": "5"}
BODY = b"Subject: chunks\n\nfirst\n.a line that DATA would dot-stuff\n.\nlast\n"
WIRE = BODY.replace(b"\n", b"\r\n")
CAPS = ["PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN", "CHUNKING"]


@pytest.fixture
def raw(certs):
    started = []

    def start(**kw):
        kw.setdefault("tls_ctx", server_context(certs))
        s = RawSMTP(**kw).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def outbox_for(outbox, s):
    return outbox(s, relay=dict(TIMEOUTS, tls="starttls"))


def commands(s):
    return [line for c in s.conns for _tls, line in c.commands]


def states(ob):
    q = json.loads(ob.run(["-bp", "--json"]).stdout)
    return [(r["state"], r.get("reply", "")) for m in q for r in m["recipients"]]


def test_a_small_message_goes_as_one_bdat_chunk_unstuffed(raw, outbox):
    s = raw(caps_tls=CAPS)
    ob = outbox_for(outbox, s)
    res = ob.run(["-i", "bob@example.org"], input=BODY)
    assert res.returncode == 0, res.stderr
    s.wait_idle()
    (m,) = s.messages
    assert m.get("bdat") is True
    # what outbox adds (Date, Message-ID, From) comes first; the rest is
    # the message byte for byte, dots as written
    assert m["head"].endswith(WIRE.split(b"\r\n\r\n", 1)[1])
    assert b"BDAT %d LAST" % m["size"] in commands(s)
    assert b"DATA" not in commands(s)
    # in that order, under TLS, the chunk right after its command
    tls_in = s.conns[0].tls_in
    assert tls_in.index(b"MAIL FROM") < tls_in.index(b"BDAT") < len(tls_in)
    assert ob.queue_files() == []


def test_without_pipelining_or_for_a_large_message_data_is_used(raw, outbox):
    s = raw(caps_tls=["8BITMIME", "AUTH PLAIN LOGIN", "CHUNKING"])
    ob = outbox_for(outbox, s)
    assert ob.run(["-i", "bob@example.org"], input=BODY).returncode == 0
    s.wait_idle()
    assert b"DATA" in commands(s) and not any(c.startswith(b"BDAT") for c in commands(s))
    big = raw(caps_tls=CAPS, keep_data=100)
    ob = outbox_for(outbox, big)
    data = b"Subject: big\n\n" + (b"y" * 99 + b"\n") * 11000     # 1.1 MB
    assert ob.run(["-i", "bob@example.org"], input=data).returncode == 0
    big.wait_idle()
    assert b"DATA" in commands(big)
    assert big.messages[0].get("bdat") is None


def test_bdat_refused_fails_like_a_refused_final_dot(raw, outbox):
    s = raw(caps_tls=CAPS, final_reply="554 5.7.1 content rejected")
    ob = outbox_for(outbox, s)
    res = ob.run(["-i", "bob@example.org"], input=BODY)
    assert res.returncode == 69
    assert b"refused by the relay: 554 5.7.1 content rejected" in res.stderr
    assert b"BDAT" in b" ".join(commands(s))


def test_bdat_deferred_stays_queued_with_the_reply(raw, outbox):
    s = raw(caps_tls=CAPS, final_reply="451 4.3.0 try later")
    ob = outbox_for(outbox, s)
    res = ob.run(["-i", "bob@example.org"], input=BODY)
    assert res.returncode == 0, res.stderr
    assert states(ob) == [("pending", "451 4.3.0 try later")]


def test_refused_recipients_still_leave_the_session_in_step(raw, outbox):
    # the relay reads the chunk although it refused the only RCPT; outbox
    # resets and the session ends cleanly with QUIT
    s = raw(caps_tls=CAPS, rcpt_reply="550 5.1.1 no such user")
    ob = outbox_for(outbox, s)
    assert ob.run(["-odq", "-i", "gone@example.org"], input=BODY).returncode == 0
    ob.run(["-q"])
    s.wait_idle()
    cmds = commands(s)
    assert any(c.startswith(b"BDAT") for c in cmds)
    assert cmds[-2:] == [b"RSET", b"QUIT"]
    assert s.conns[0].error is None


def test_postfix_takes_bdat_and_stores_the_message_intact(postfix, outbox):
    ob = outbox(postfix)
    res = ob.run(["-i", "bob@example.org"], input=BODY)
    assert res.returncode == 0, res.stderr
    (data,) = postfix.messages(1)
    assert data.endswith(BODY.split(b"\n\n", 1)[1])
    assert "bdat=1" in postfix.log_text()


def test_a_long_ehlo_reply_is_read_whole(raw, outbox):
    # Regression: the EHLO reply was kept in a 1 KB buffer and the keywords
    # parsed from it, so AUTH at the end of a long reply went unseen
    filler = ["X-FILLER-%03d %s" % (i, "a" * 40) for i in range(60)]
    s = raw(caps_tls=filler + ["PIPELINING", "AUTH PLAIN LOGIN", "CHUNKING"])
    ob = outbox_for(outbox, s)
    res = ob.run(["-i", "bob@example.org"], input=BODY)
    assert res.returncode == 0, res.stderr
    s.wait_idle()
    assert any(c.startswith(b"AUTH PLAIN") for c in commands(s))
    assert s.messages[0].get("bdat") is True
