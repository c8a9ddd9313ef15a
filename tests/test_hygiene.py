"""Message hygiene: long lines, 8-bit and UTF-8, From rewriting, aliases.

Each case checks the exact bytes the relay receives, or the exact error.
"""
import quopri
import re

import pytest


def send(ob, args, data):
    res = ob.run(args, input=data)
    assert res.returncode == 0, res.stderr
    return ob.relay.wait_for(1)[0]


def split(msg):
    head, body = msg["data"].split(b"\r\n\r\n", 1)
    return head, body


def test_long_line_is_reencoded_quoted_printable(relay, outbox):
    ob = outbox(relay())
    line = ("word " * 400).strip().encode()          # 1999 octets
    body = b"short\n" + line + b"\ntrailing space \nend\n"
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: long\n\n" + body)
    head, got = split(msg)
    assert b"\r\nMIME-Version: 1.0\r\n" in b"\r\n" + head + b"\r\n"
    assert head.endswith(b"Content-Transfer-Encoding: quoted-printable")
    assert b"Content-Type" not in head                 # 7-bit: none needed
    assert max(len(l) for l in got.split(b"\r\n")) <= 76
    assert quopri.decodestring(got.replace(b"\r\n", b"\n")) == body
    assert b"trailing space=20\r\n" in got
    assert "BODY=8BITMIME" not in msg["mail_options"]


def test_long_8bit_line_gets_utf8_content_type(relay, outbox):
    ob = outbox(relay())
    body = ("é" * 700 + "\n").encode()
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: long\n\n" + body)
    head, got = split(msg)
    assert b"Content-Type: text/plain; charset=utf-8\r\n" in head + b"\r\n"
    assert quopri.decodestring(got.replace(b"\r\n", b"\n")) == body
    assert all(b < 128 for b in got)


def test_long_line_with_identity_encoding_is_reencoded(relay, outbox):
    ob = outbox(relay())
    body = b"y" * 1500 + b"\n"
    msg = send(ob, ["-i", "bob@example.org"],
               b"MIME-Version: 1.0\nContent-Type: text/plain\n"
               b"Content-Transfer-Encoding: 8bit\n\n" + body)
    head, got = split(msg)
    assert head.count(b"Content-Transfer-Encoding") == 1
    assert b"Content-Transfer-Encoding: quoted-printable" in head
    assert head.count(b"MIME-Version") == 1
    assert quopri.decodestring(got.replace(b"\r\n", b"\n")) == body


@pytest.mark.parametrize("headers,line", [
    (b"Content-Transfer-Encoding: base64\n", 3),
    (b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n", 4),
])
def test_long_line_that_cannot_be_fixed_is_refused(relay, outbox, headers, line):
    r = relay()
    ob = outbox(r)
    res = ob.run(["-i", "bob@example.org"], input=headers + b"\n" + b"z" * 1200 + b"\n")
    assert res.returncode == 65
    assert res.stderr == b"sendmail: line %d is longer than 998 octets and the message is " \
        b"already MIME-encoded or multipart, so it cannot be re-encoded safely; " \
        b"nothing was queued\n" % line
    assert ob.queue_files() == [] and r.messages == []


def test_long_header_line_is_refused(relay, outbox):
    r = relay()
    ob = outbox(r)
    res = ob.run(["-i", "bob@example.org"], input=b"X-Long: " + b"h" * 1000 + b"\n\nx\n")
    assert res.returncode == 65
    assert res.stderr == b"sendmail: header line 1 is longer than 998 octets; nothing was queued\n"
    assert ob.queue_files() == []


def test_line_of_exactly_998_octets_is_left_alone(relay, outbox):
    ob = outbox(relay())
    body = b"q" * 998 + b"\r\n"
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: edge\r\n\r\n" + body)
    assert split(msg)[1] == body


def test_8bit_body_is_sent_with_body_8bitmime(relay, outbox):
    ob = outbox(relay())
    body = "Grüße aus Köln\n".encode()
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: 8bit\n\n" + body)
    assert split(msg)[1] == body.replace(b"\n", b"\r\n")
    assert "BODY=8BITMIME" in msg["mail_options"]
    assert "SMTPUTF8" not in msg["mail_options"]


def test_7bit_body_has_no_body_parameter(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: plain\n\nascii\n")
    assert not any(o.startswith("BODY") for o in msg["mail_options"])


def test_B8BITMIME_is_declared(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "-B8BITMIME", "bob@example.org"], b"Subject: p\n\nascii\n")
    assert "BODY=8BITMIME" in msg["mail_options"]


def test_utf8_header_uses_smtputf8(relay, outbox):
    ob = outbox(relay())
    data = "Subject: Grüße\n\nbody\n".encode()
    msg = send(ob, ["-i", "bob@example.org"], data)
    assert msg["data"].startswith("Subject: Grüße\r\n".encode())
    assert "SMTPUTF8" in msg["mail_options"]


def test_utf8_envelope_address_uses_smtputf8(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "jürgen@example.org"], b"Subject: u\n\nx\n")
    assert msg["rcpt_tos"] == ["jürgen@example.org"]
    assert "SMTPUTF8" in msg["mail_options"]


def test_cron_mail_from_root_is_rewritten_and_aliased(relay, outbox):
    # Debian cron: sendmail -FCronDaemon -i -B8BITMIME -oem root
    ob = outbox(relay(), aliases={"root": "ops@example.org"})
    data = (b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> run-parts\n"
            b"Content-Type: text/plain; charset=UTF-8\n\nbackup done\n")
    msg = send(ob, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"], data)
    assert msg["mail_from"] == "app@example.com"
    assert msg["rcpt_tos"] == ["ops@example.org"]
    head, body = split(msg)
    assert re.fullmatch(
        rb"To: root\r\nSubject: Cron <root@host> run-parts\r\n"
        rb"Content-Type: text/plain; charset=UTF-8\r\n"
        rb"From: Cron Daemon <app@example\.com>\r\nDate: .*\r\nMessage-ID: <.*>", head), head
    assert b"Reply-To" not in head
    assert body == b"backup done\r\n"


def test_rewrite_local_keeps_remote_from(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "-f", "alice@other.example", "bob@example.org"],
               b"From: Alice <alice@other.example>\n\nx\n")
    assert msg["mail_from"] == "alice@other.example"
    assert b"From: Alice <alice@other.example>\r\n" in msg["data"]


def test_rewrite_local_fixes_bare_envelope_sender(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "-f", "www-data", "bob@example.org"], b"From: www-data\n\nx\n")
    assert msg["mail_from"] == "app@example.com"
    assert b"From: www-data <app@example.com>\r\n" not in msg["data"]
    assert b"From: app@example.com\r\n" in msg["data"]


def test_rewrite_always_moves_original_to_reply_to(relay, outbox):
    ob = outbox(relay(), mail={"rewrite_from": "always"})
    msg = send(ob, ["-i", "-f", "alice@other.example", "bob@example.org"],
               b"From: \"Alice A.\" <alice@other.example>\nSubject: s\n\nx\n")
    assert msg["mail_from"] == "app@example.com"
    head = split(msg)[0] + b"\r\n"
    assert b'From: "Alice A." <app@example.com>\r\n' in head
    assert b'Reply-To: "Alice A." <alice@other.example>\r\n' in head


def test_rewrite_always_keeps_an_existing_reply_to(relay, outbox):
    ob = outbox(relay(), mail={"rewrite_from": "always"})
    msg = send(ob, ["-i", "bob@example.org"],
               b"From: alice@other.example\nReply-To: list@other.example\n\nx\n")
    head = split(msg)[0]
    assert head.count(b"Reply-To") == 1 and b"Reply-To: list@other.example" in head
    assert b"From: app@example.com" in head


def test_rewrite_never_leaves_from_alone(relay, outbox):
    ob = outbox(relay(), mail={"rewrite_from": "never"})
    msg = send(ob, ["-i", "-f", "root", "bob@example.org"], b"From: root (Cron Daemon)\n\nx\n")
    assert msg["mail_from"] == "root@example.com"
    assert b"From: root (Cron Daemon)\r\n" in msg["data"]


def test_catch_all_alias_for_any_bare_name(relay, outbox):
    ob = outbox(relay(), aliases={"*": "ops@example.org", "backup": "tapes@example.org"})
    msg = send(ob, ["-i", "www-data", "backup", "someone@example.net"], b"\nx\n")
    assert msg["rcpt_tos"] == ["ops@example.org", "tapes@example.org", "someone@example.net"]


def test_alias_loop_is_an_error(relay, outbox):
    r = relay()
    ob = outbox(r, aliases={"a": "b", "b": "a"})
    res = ob.run(["-i", "a"], input=b"\nx\n")
    assert res.returncode == 64 and b"alias loop" in res.stderr
    assert ob.queue_files() == []


def test_bv_reports_without_sending(relay, outbox):
    r = relay()
    ob = outbox(r, aliases={"root": "ops@example.org"})
    res = ob.run(["-bv", "root", "bob@example.org"])
    assert res.returncode == 0
    assert res.stdout.decode().splitlines() == [
        "ops@example.org... deliverable: relay 127.0.0.1 port %d (starttls), "
        "sender <app@example.com>" % r.port,
        "bob@example.org... deliverable: relay 127.0.0.1 port %d (starttls), "
        "sender <app@example.com>" % r.port]
    assert r.connections == 0 and ob.queue_files() == []


def test_bv_without_relay(outbox):
    ob = outbox()
    res = ob.run(["-bv", "bob@example.org"])
    assert res.stdout == b"bob@example.org... queued only: no relay configured\n"


def test_utf8_address_to_relay_without_smtputf8_fails_clearly(relay, outbox):
    r = relay(smtputf8=False)
    ob = outbox(r)
    res = ob.run(["-i", "jürgen@example.org"], input=b"Subject: u\n\nx\n")
    assert res.returncode == 69
    assert res.stderr.decode() == (
        "sendmail: %s: <jürgen@example.org> refused by the relay: 553 5.6.7 the relay "
        "does not support SMTPUTF8, which a non-ASCII address needs\n"
        % ob.queue_files()[0].split("/")[-1])
    assert r.messages == []


def test_utf8_header_to_relay_without_smtputf8_is_still_sent(relay, outbox):
    # UTF-8 only in headers (PHP mail() with a raw UTF-8 Subject): sent as
    # 8BITMIME rather than refused, which is what every relay accepts
    r = relay(smtputf8=False)
    ob = outbox(r)
    msg = send(ob, ["-i", "bob@example.org"], "Subject: Grüße\n\nx\n".encode())
    assert "SMTPUTF8" not in msg["mail_options"]
    assert "BODY=8BITMIME" in msg["mail_options"]
    assert msg["data"].startswith("Subject: Grüße\r\n".encode())


def test_alias_to_itself_is_final(relay, outbox):
    ob = outbox(relay(), aliases={"root": "root, ops@example.org"})
    msg = send(ob, ["-i", "root"], b"\nx\n")
    assert msg["rcpt_tos"] == ["root@example.com", "ops@example.org"]
