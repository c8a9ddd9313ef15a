"""Submission: what the relay receives, byte for byte, and the envelope.

Each test runs the built ./sendmail against a loopback relay that requires
STARTTLS and AUTH, and checks the exact message and envelope it recorded.
"""
import re

import pytest

DATE_RE = rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n"
MSGID_RE = rb"Message-ID: <[0-9A-F]+\.[0-9A-F]{8}@example\.com>\r\n"


def send(ob, args, data):
    res = ob.run(args, input=data)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"" and res.stderr == b"", "success must be silent"
    return ob.relay.wait_for(1)[0]


def test_adds_from_date_message_id_and_drops_bcc(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "bob@example.org"],
               b"Subject: hi\nBcc: hidden@example.net\n\nhello\n")
    assert re.fullmatch(
        rb"Subject: hi\r\nFrom: (?:[^<\r\n]+ <app@example\.com>|app@example\.com)\r\n"
        + DATE_RE + MSGID_RE +
        rb"\r\nhello\r\n", msg["data"]), msg["data"]
    assert msg["rcpt_tos"] == ["bob@example.org"]   # Bcc without -t: not a rcpt
    assert msg["mail_from"] == "app@example.com"
    assert msg["auth_user"] == "alice" and msg["tls"]


def test_existing_headers_are_kept_verbatim(relay, outbox):
    ob = outbox(relay())
    data = (b"From: Alice <alice@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"Message-ID: <x@y>\r\nSubject: folded\r\n  continuation\r\n\r\nbody\r\n")
    msg = send(ob, ["-i", "bob@example.org"], data)
    assert msg["data"] == data


def test_from_uses_full_name_from_F(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "-F", "Cron Daemon", "bob@example.org"], b"Subject: x\n\nb\n")
    assert b"From: Cron Daemon <app@example.com>\r\n" in msg["data"]


def test_from_display_name_with_specials_is_quoted(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "-FDoe, John", "bob@example.org"], b"\nb\n")
    assert b'From: "Doe, John" <app@example.com>\r\n' in msg["data"]


def test_without_mail_from_the_login_at_domain_is_used(relay, outbox):
    ob = outbox(relay(), mail={"from": None})
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: x\n\nb\n")
    login = msg["mail_from"].split("@")[0]
    assert msg["mail_from"] == login + "@example.com"
    assert re.search(rb"From: (.* <)?" + login.encode() + rb"@example\.com>?\r\n", msg["data"])


@pytest.mark.parametrize("data", [
    b"Subject: e\n\nline1\nline2\n",
    b"Subject: e\r\n\r\nline1\r\nline2\r\n",
    b"Subject: e\r\n\nline1\nline2\r\n",          # mixed
    b"Subject: e\n\nline1\rline2",                # bare CR, no final newline
])
def test_line_endings_become_crlf(relay, outbox, data):
    ob = outbox(relay())
    msg = send(ob, ["-i", "bob@example.org"], data)
    body = msg["data"].split(b"\r\n\r\n", 1)[1]
    assert body == b"line1\r\nline2\r\n"
    assert b"\n" not in msg["data"].replace(b"\r\n", b"")


def test_lone_dot_ends_input_without_i(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["bob@example.org"], b"Subject: d\n\nbefore\n.\nafter\n")
    assert msg["data"].endswith(b"\r\n\r\nbefore\r\n")


def test_lone_dot_in_headers_ends_input_without_i(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["bob@example.org"], b"Subject: d\n.\nnot this\n")
    assert b"not this" not in msg["data"]


def test_with_i_dot_lines_are_data_and_survive_stuffing(relay, outbox):
    ob = outbox(relay())
    body = b".\n..\n.x\n. \nend\n.\n"
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: d\n\n" + body)
    assert msg["data"].split(b"\r\n\r\n", 1)[1] == body.replace(b"\n", b"\r\n")


def test_bare_lf_dot_line_cannot_end_the_data_early(relay, outbox):
    # curl 7.88 stuffs only after CRLF: "\n.\n" would end DATA early.
    ob = outbox(relay())
    body = b"a\n.\nRCPT TO:<evil@example.net>\nb\n"
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: s\n\n" + body)
    assert msg["data"].split(b"\r\n\r\n", 1)[1] == body.replace(b"\n", b"\r\n")
    assert msg["rcpt_tos"] == ["bob@example.org"]


def test_body_that_dot_stuffing_grows_arrives_whole(relay, outbox):
    # libcurl's INFILESIZE bug dropped the last k bytes when stuffing
    # added k; outbox streams its own stuffing over chunk boundaries.
    ob = outbox(relay())
    lines = [(b"." * (1 + i % 7)) + b"x" * (i % 50) for i in range(6000)]
    body = b"\n".join(lines) + b"\nTHE END\n"
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: big\n\n" + body)
    got = msg["data"].split(b"\r\n\r\n", 1)[1]
    assert got == body.replace(b"\n", b"\r\n")
    assert len(got) > 128 * 1024


def test_mbox_from_line_is_removed(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "bob@example.org"],
               b"From 1234abcd Mon Sep 17 00:00:00 2001\nFrom: a@example.org\nSubject: p\n\nx\n")
    assert msg["data"].startswith(b"From: a@example.org\r\nSubject: p\r\n")


def test_body_without_blank_line_after_headers(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "bob@example.org"], b"Subject: s\nthis is body text\nmore\n")
    assert msg["data"].endswith(b"\r\n\r\nthis is body text\r\nmore\r\n")


def test_nul_byte_is_refused_and_nothing_queued(relay, outbox):
    r = relay()
    ob = outbox(r)
    res = ob.run(["-i", "bob@example.org"], input=b"Subject: n\n\nbad\0byte\n")
    assert res.returncode == 65
    assert res.stderr == b"sendmail: the message contains a NUL byte (line 3); nothing was queued\n"
    assert ob.queue_files() == [] and r.messages == []


def test_t_reads_to_cc_bcc_and_removes_bcc(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-t", "-i"],
               b"To: Bob <bob@example.org>, carol@example.org\nCc: \"D, E\" <de@example.org>\n"
               b"Bcc: secret@example.net\nSubject: t\n\nx\n")
    assert msg["rcpt_tos"] == ["bob@example.org", "carol@example.org",
                               "de@example.org", "secret@example.net"]
    assert b"Bcc" not in msg["data"] and b"secret" not in msg["data"]


def test_t_union_with_arguments_deduplicated(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-ti", "bob@example.org", "zed@example.org"],
               b"To: BOB@example.org, amy@example.org\n\nx\n")
    assert msg["rcpt_tos"] == ["bob@example.org", "zed@example.org", "amy@example.org"]


def test_t_resent_block_replaces_to_cc(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-t", "-i"],
               b"Resent-To: new@example.org\nResent-From: a@example.org\nTo: old@example.org\n\nx\n")
    assert msg["rcpt_tos"] == ["new@example.org"]


def test_comma_separated_recipient_arguments(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "a@example.org, b@example.org", "c@example.org"], b"\nx\n")
    assert msg["rcpt_tos"] == ["a@example.org", "b@example.org", "c@example.org"]


def test_bare_names_are_aliased_then_qualified(relay, outbox):
    ob = outbox(relay(), aliases={"root": "ops@example.org, admin"})
    msg = send(ob, ["-i", "root", "www-data"], b"\nx\n")
    assert msg["rcpt_tos"] == ["ops@example.org", "admin@example.com",
                               "www-data@example.com"]


@pytest.mark.parametrize("args,sender", [
    (["-fbounce@example.org"], "bounce@example.org"),
    (["-f", "bounce@example.org"], "bounce@example.org"),
    (["-r", "bounce@example.org"], "bounce@example.org"),
    (["-rbounce@example.org"], "bounce@example.org"),
    (["-f", "<>"], ""),
    (["-f<>"], ""),
    (["-f", "www-data"], "www-data@example.com"),
    (["-f", "Bounce <b@example.org>"], "b@example.org"),
])
def test_envelope_sender_from_f_and_r(relay, outbox, args, sender):
    ob = outbox(relay(), mail={"rewrite_from": "never"})
    msg = send(ob, args + ["-i", "bob@example.org"], b"From: x@example.org\n\nx\n")
    assert msg["mail_from"] == sender
    assert b"From: x@example.org\r\n" in msg["data"]   # From: untouched


def test_sender_never_taken_from_from_header(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-i", "bob@example.org"], b"From: someone@else.example\n\nx\n")
    assert msg["mail_from"] == "app@example.com"


def test_options_after_recipients_and_double_dash(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["bob@example.org", "-i", "--", "-odd@example.org"], b"\n.\nx\n")
    assert msg["rcpt_tos"] == ["bob@example.org", "-odd@example.org"]
    assert msg["data"].endswith(b"\r\n\r\n.\r\nx\r\n")   # -i honoured


@pytest.mark.parametrize("args,code", [
    (["-i"], 64),                              # no recipients
    (["-Z", "bob@example.org"], 64),           # unknown flag
    (["-f"], 64),                              # missing value
    (["-i", "bad\rname@example.org"], 64),     # CR in an address
    (["-i", "a b@example.org"], 64),
    (["-f", "x\n@example.org", "bob@example.org"], 64),
    (["-qX"], 64),
    (["-bz"], 64),
])
def test_usage_errors(relay, outbox, args, code):
    r = relay()
    ob = outbox(r)
    res = ob.run(args, input=b"Subject: x\n\nx\n")
    assert res.returncode == code
    assert res.stderr.startswith(b"sendmail: ") and res.stderr.count(b"\n") == 1
    assert ob.queue_files() == [] and r.messages == []


def test_t_without_any_recipient_is_usage_error(relay, outbox):
    r = relay()
    ob = outbox(r)
    res = ob.run(["-t"], input=b"Subject: none\n\nx\n")
    assert res.returncode == 64 and b"no recipients" in res.stderr
    assert ob.queue_files() == []


def test_verbose_shows_the_dialogue_without_secrets(relay, outbox):
    ob = outbox(relay())
    res = ob.run(["-v", "-i", "bob@example.org"], input=b"\nx\n")
    assert res.returncode == 0
    assert b">>> MAIL FROM:<app@example.com>" in res.stderr
    assert b"235" in res.stderr and b"s3cret" not in res.stderr
    assert b"AHMzY3JldA" not in res.stderr   # base64 of the PLAIN secret


def test_accepted_ignored_flags(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["-oem", "-oi", "-B8BITMIME", "-N", "never", "-R", "hdrs",
                    "-V", "envid", "-G", "-U", "-m", "-n", "-L", "tag", "-h", "5",
                    "-X", "/dev/null", "-A", "c", "-O", "x=y", "-odi", "-bm",
                    "bob@example.org"], b"\n.\nx\n")
    assert msg["data"].endswith(b"\r\n.\r\nx\r\n")


def test_newaliases_and_bi_succeed_quietly(outbox, tmp_path):
    ob = outbox()
    for args in (["-bi"], ["-I"]):
        res = ob.run(args)
        assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")


def test_lone_dot_as_last_line_without_newline_ends_input(relay, outbox):
    ob = outbox(relay())
    msg = send(ob, ["bob@example.org"], b"Subject: d\n\nbody\n.")
    assert msg["data"].endswith(b"\r\n\r\nbody\r\n")
