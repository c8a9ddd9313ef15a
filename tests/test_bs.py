"""sendmail -bs: the SMTP dialogue on stdin/stdout (Symfony, Laravel).

Each test feeds a whole client dialogue (pipelined: all of it at once),
then checks every reply code, that stderr stayed empty, and what reached
the relay.
"""
import re



def session(ob, lines, env=None):
    data = "".join(l + "\r\n" for l in lines).encode()
    res = ob.run(["-bs"], input=data, env=env)
    assert res.returncode == 0
    assert res.stderr == b"", "nothing may be written to stderr during -bs"
    replies = res.stdout.decode().split("\r\n")
    assert replies[-1] == ""
    return [r for r in replies[:-1] if not re.match(r"^\d{3}-", r)]


def codes(replies):
    return [int(r[:3]) for r in replies]


MSG1 = ["MAIL FROM:<app@example.org>", "RCPT TO:<bob@example.org>", "DATA",
        "Subject: one", "", "first", "..dotted", ".", ]


def test_ehlo_advertises_extensions(relay, outbox):
    ob = outbox(relay())
    res = ob.run(["-bs"], input=b"EHLO client.example\r\nQUIT\r\n")
    out = res.stdout.decode()
    assert out.startswith("220 example.com ESMTP")
    for ext in ("PIPELINING", "8BITMIME", "SIZE", "DSN", "SMTPUTF8",
                "ENHANCEDSTATUSCODES"):
        assert re.search(r"^250[- ]%s" % ext, out, re.M), ext
    assert out.endswith("221 2.0.0 Bye\r\n")


def test_several_messages_pipelined_with_rset(relay, outbox):
    r = relay()
    ob = outbox(r)
    replies = session(ob, ["EHLO c"] + MSG1 + [
        "RSET", "NOOP",
        "MAIL FROM:<>", "RCPT TO:<carol@example.org>", "RCPT TO:<dan@example.org>",
        "DATA", "Subject: two", "", "second", ".",
        "MAIL FROM:<x@example.org>", "RCPT TO:<erin@example.org>", "RSET",
        "HELO c", "MAIL FROM:<y@example.org>", "RCPT TO:<fay@example.org>", "DATA",
        "Subject: three", "", "third", ".", "QUIT"])
    assert codes(replies) == [220, 250, 250, 250, 354, 250, 250, 250,
                              250, 250, 250, 354, 250,
                              250, 250, 250,
                              250, 250, 250, 354, 250, 221]
    assert all("queued as" in replies[i] for i in (5, 12, 20))
    msgs = r.wait_for(3)
    assert [(m["mail_from"], m["rcpt_tos"]) for m in msgs] == [
        ("app@example.org", ["bob@example.org"]),
        ("", ["carol@example.org", "dan@example.org"]),
        ("y@example.org", ["fay@example.org"])]
    assert msgs[0]["data"].endswith(b"\r\n\r\nfirst\r\n.dotted\r\n")
    assert b"erin" not in b"".join(m["data"] for m in msgs)


def test_250_after_data_means_durable(relay, outbox):
    # the relay is down: the message must still be queued when 250 is said
    r = relay()
    ob = outbox(r, relay={"port": 1})
    replies = session(ob, ["EHLO c"] + MSG1 + ["QUIT"])
    assert codes(replies)[-2:] == [250, 221]
    qid = replies[-2].split()[-1]
    assert any(f.endswith("/" + qid) for f in ob.queue_files())


def test_garbage_gets_500_or_501_and_the_session_goes_on(relay, outbox):
    r = relay()
    ob = outbox(r)
    replies = session(ob, [
        "EHLO c", "HELLO there", "MAIL", "MAIL FROM:bob", "RCPT TO:<b@example.org>",
        "MAIL FROM:<a@example.org> FOO=BAR", "DATA", "\x01\x02", "",
        "MAIL FROM:<a@example.org>", "MAIL FROM:<a@example.org>",
        "RCPT TO:<bad address@example.org>", "RCPT TO:<b@example.org> NOTIFY=MAYBE",
        "DATA extra", "RCPT TO:<b@example.org>", "DATA", "Subject: ok", "", "ok", ".",
        "VRFY root", "EXPN list", "HELP", "QUIT"])
    assert codes(replies) == [220, 250, 500, 501, 501, 503, 555, 554, 500, 500,
                              250, 503, 501, 501, 501, 250, 354, 250,
                              252, 502, 214, 221]
    assert len(r.wait_for(1)) == 1


def test_line_too_long_is_500(relay, outbox):
    ob = outbox(relay())
    replies = session(ob, ["EHLO c", "NOOP " + "x" * 3000, "NOOP", "QUIT"])
    assert codes(replies) == [220, 250, 500, 250, 221]
    assert "too long" in replies[2]


def test_message_over_max_size_is_552_and_session_continues(relay, outbox):
    r = relay()
    ob = outbox(r, mail={"max_size": "1k"})
    big = ["x" * 70] * 40
    replies = session(ob, ["EHLO c", "MAIL FROM:<a@example.org> SIZE=5000",
                           "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>",
                           "DATA", "Subject: big", ""] + big + [".", "NOOP"] + MSG1 +
                      ["QUIT"])
    assert codes(replies) == [220, 250, 552, 250, 250, 354, 552, 250,
                              250, 250, 354, 250, 221]
    assert [m["data"].count(b"x" * 70) for m in r.wait_for(1)] == [0]
    assert len([f for f in ob.queue_files() if not f.endswith(".st")]) == 0


def test_eof_without_quit_keeps_accepted_messages(relay, outbox):
    r = relay()
    ob = outbox(r)
    res = ob.run(["-bs"], input=("EHLO c\r\n" + "\r\n".join(MSG1) +
                                 "\r\nMAIL FROM:<a@example.org>\r\n").encode())
    assert res.returncode == 0 and res.stderr == b""
    assert len(r.wait_for(1)) == 1


def test_nul_in_data_is_refused_and_session_continues(relay, outbox):
    r = relay()
    ob = outbox(r)
    data = ("EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
            "DATA\r\nSubject: n\r\n\r\nbad\0byte\r\n.\r\nNOOP\r\nQUIT\r\n").encode()
    res = ob.run(["-bs"], input=data)
    out = res.stdout.decode().split("\r\n")
    assert [l[:3] for l in out if l and l[3] == " "] == ["220", "250", "250", "250",
                                                         "354", "554", "250", "221"]
    assert res.stderr == b"" and r.messages == []


def test_dsn_and_body_parameters_are_stored(relay, outbox):
    ob = outbox(relay(), relay={"port": 1})
    replies = session(ob, [
        "EHLO c", "MAIL FROM:<a@example.org> BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef",
        "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org",
        "DATA", "Subject: d", "", "x", ".", "QUIT"])
    assert codes(replies) == [220, 250, 250, 250, 354, 250, 221]
    qf = [f for f in ob.queue_files() if not f.endswith(".st")][0]
    head = open(qf, "rb").read().split(b"\n\n")[0].decode()
    assert "dsn RET=HDRS ENVID=abc+2Bdef" in head
    assert "rcpt b@example.org NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org" in head
    assert "body 8BITMIME" in head


def test_bare_recipient_is_aliased_and_qualified(relay, outbox):
    r = relay()
    ob = outbox(r, aliases={"root": "ops@example.org"})
    replies = session(ob, ["HELO c", "MAIL FROM:<www-data>", "RCPT TO:<root>",
                           "RCPT TO:<alice>", "DATA", "", "x", ".", "QUIT"])
    assert codes(replies) == [220, 250, 250, 250, 250, 354, 250, 221]
    m = r.wait_for(1)[0]
    assert m["rcpt_tos"] == ["ops@example.org", "alice@example.com"]


def test_spool_failure_mid_session_is_421_not_stderr(relay, outbox, tmp_path):
    import os
    target = tmp_path / "elsewhere"
    target.mkdir()
    ob = outbox(relay())
    os.symlink(target, ob.spool)
    res = ob.run(["-bs"], input=("EHLO c\r\n" + "\r\n".join(MSG1) + "\r\nQUIT\r\n").encode())
    assert res.stderr == b""
    assert res.stdout.decode().split("\r\n")[-2].startswith("421 4.3.0 ")
    assert res.returncode == 73


def test_total_refusal_after_250_is_bounced(relay, outbox):
    # the client heard 250: it must learn of the refusal by a bounce
    import email
    r = relay(rcpt_rules={"bob@example.org": "550 5.1.1 No such user"})
    ob = outbox(r)
    replies = session(ob, ["EHLO c"] + MSG1 + ["QUIT"])
    assert codes(replies)[-2:] == [250, 221]
    bounce = r.wait_for(1)[0]
    assert (bounce["mail_from"], bounce["rcpt_tos"]) == ("", ["app@example.org"])
    report = email.message_from_bytes(bounce["data"]).get_payload()[1].get_payload()
    assert report[1]["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"


def test_max_size_counts_the_headers(relay, outbox):
    r = relay()
    ob = outbox(r, mail={"max_size": "1k"})
    replies = session(ob, ["EHLO c", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>",
                           "DATA", "X-Big: " + "h" * 900, "", "x" * 200, ".", "QUIT"])
    assert codes(replies) == [220, 250, 250, 250, 354, 552, 221]
    assert r.messages == []
