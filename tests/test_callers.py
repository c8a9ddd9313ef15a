"""The caller matrix: real programs, and the exact command lines of common
callers, through ./sendmail to the loopback relay.

Part 1 drives real programs from Debian packages (php-cli, bsd-mailx,
git send-email, swaks, Python's smtplib) and points each at ./sendmail
through a small wrapper script in tmp_path, which also records every
argv it was given, outbox's exit status, and outbox's stderr.  Part 2
runs ./sendmail with exactly the argv that common callers use (see
/work/shared/research/callers.md, "Invocations seen") and a message
typical for that caller.

Every test checks what the relay received: envelope, and the message byte
for byte; only Date and Message-ID values, and what the real programs
generate themselves (their Date, Message-Id, ...), are matched by regex.
"""
import os
import re
import shlex
import shutil
import signal
import smtplib
import socket
import subprocess
import time

import pytest

# Whole header lines that outbox adds (see test_submit.py).
DATE_RE = rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n"
MSGID_RE = rb"Message-ID: <[0-9A-F]+\.[0-9A-F]{8}@example\.com>\r\n"
# The added From: [mail] from with the caller's GECOS name, if it has one.
FROM_RE = rb"From: (?:[^<\r\n]+ <app@example\.com>|app@example\.com)\r\n"

PLACEHOLDERS = {
    b"{DATE}": DATE_RE,          # a Date: line added by outbox
    b"{MSGID}": MSGID_RE,        # a Message-ID: line added by outbox
    b"{FROM}": FROM_RE,          # a From: line added by outbox
    b"{ANY}": rb"[^\r\n]*",      # the rest of a line a caller generates
}


def pattern(template):
    """A template (bytes with the PLACEHOLDERS) as a compiled regex; the
    rest is literal."""
    parts = re.split(rb"(\{[A-Z]+\})", template)
    return re.compile(b"".join(PLACEHOLDERS.get(p, re.escape(p)) for p in parts))


def assert_data(data, template):
    """The message is exactly the template, byte for byte."""
    assert pattern(template).fullmatch(data), (
        "message differs from the template:\n--- got:\n%r\n--- wanted:\n%r"
        % (data, template))


def silent_ok(res):
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert res.stdout == b"" and res.stderr == b"", "success must be silent"


class Wrapper:
    """tmp_path/sendmail: runs ./sendmail -C <conf> "$@"; records each argv
    (argv.log, one line per call, arguments ended by \\x1f), outbox's exit
    status (rc.log) and its stderr (stderr.log)."""

    def __init__(self, ob, tmp_path):
        self.dir = tmp_path
        self.path = str(tmp_path / "sendmail")
        self.argv_log = tmp_path / "argv.log"
        self.rc_log = tmp_path / "rc.log"
        self.err_log = tmp_path / "stderr.log"
        q = shlex.quote
        script = (
            "#!/bin/sh\n"
            "{ for a in \"$@\"; do printf '%%s\\037' \"$a\"; done; echo; } >> %s\n"
            "%s -C %s \"$@\" 2>> %s\n"
            "rc=$?\n"
            "echo $rc >> %s\n"
            "exit $rc\n" % (q(str(self.argv_log)), q(ob.binary), q(ob.conf_path),
                            q(str(self.err_log)), q(str(self.rc_log))))
        with open(self.path, "w") as f:
            f.write(script)
        os.chmod(self.path, 0o755)

    def calls(self):
        if not self.argv_log.exists():
            return []
        return [line.split("\x1f")[:-1]
                for line in self.argv_log.read_text().splitlines()]

    def statuses(self):
        if not self.rc_log.exists():
            return []
        return [int(x) for x in self.rc_log.read_text().split()]

    def stderr(self):
        return self.err_log.read_bytes() if self.err_log.exists() else b""

    def assert_clean(self, calls):
        """outbox ran `calls` times, exited 0 each time, said nothing."""
        assert self.statuses() == [0] * calls, self.stderr()
        assert self.stderr() == b""


def run_program(cmd, ob, tmp_path, input=b"", env=None, timeout=60):
    """Run a real program with the fixture's clean environment."""
    return subprocess.run(
        [str(c) for c in cmd], input=input, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=ob.env(env), cwd=str(tmp_path), timeout=timeout)


def need(program):
    if shutil.which(program) is None:
        pytest.fail("%s is not installed (see install.sh)" % program, pytrace=False)


# == Part 1: real programs ===================================================

# -- PHP mail() ---------------------------------------------------------------

PHP_MAIL = ('exit(mail("bob@example.org", "Hello from PHP", "line1\\nline2\\n.\\n'
            '..two\\nend", "X-Mailer: outbox-test"%s) ? 0 : 3);')


def php(ob, tmp_path, w, code):
    need("php")
    # -n: no php.ini, so the result does not depend on the host's; PHP's
    # built-in defaults apply (mail.add_x_header off).
    return run_program(["php", "-n", "-d", "sendmail_path=%s -t -i" % w.path,
                        "-r", code], ob, tmp_path)


def test_php_mail(relay, outbox, tmp_path):
    ob = outbox(relay())
    w = Wrapper(ob, tmp_path)
    res = php(ob, tmp_path, w, PHP_MAIL % "")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")   # mail() true
    w.assert_clean(1)
    assert w.calls() == [["-t", "-i"]]
    (m,) = ob.relay.wait_for(1)
    assert m["mail_from"] == "app@example.com"
    assert m["rcpt_tos"] == ["bob@example.org"]
    # PHP ends header lines with CRLF and passes the body's LFs as they
    # are (plus a final CRLF); with -i the "." line is data.
    assert_data(m["data"],
                b"To: bob@example.org\r\nSubject: Hello from PHP\r\n"
                b"X-Mailer: outbox-test\r\n{FROM}{DATE}{MSGID}"
                b"\r\nline1\r\nline2\r\n.\r\n..two\r\nend\r\n")


def test_php_mail_with_additional_params_f(relay, outbox, tmp_path):
    ob = outbox(relay())
    w = Wrapper(ob, tmp_path)
    res = php(ob, tmp_path, w, PHP_MAIL % ', "-fbounce@example.org"')
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    w.assert_clean(1)
    assert w.calls() == [["-t", "-i", "-fbounce@example.org"]]   # PHP appends it
    (m,) = ob.relay.wait_for(1)
    assert m["mail_from"] == "bounce@example.org"
    assert m["rcpt_tos"] == ["bob@example.org"]
    # The added From: is [mail] from, never the -f address.
    assert_data(m["data"],
                b"To: bob@example.org\r\nSubject: Hello from PHP\r\n"
                b"X-Mailer: outbox-test\r\n{FROM}{DATE}{MSGID}"
                b"\r\nline1\r\nline2\r\n.\r\n..two\r\nend\r\n")


def test_php_mail_with_from_cc_bcc_headers(relay, outbox, tmp_path):
    # The WordPress/contact-form style: From, Cc and Bcc in additional_headers.
    ob = outbox(relay())
    w = Wrapper(ob, tmp_path)
    res = php(ob, tmp_path, w,
              'exit(mail("Bob <bob@example.org>", "Contact form", "Hi.\\n", '
              '["From" => "Web <web@example.org>", "Cc" => "carol@example.org", '
              '"Bcc" => "hidden@example.net"]) ? 0 : 3);')
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    w.assert_clean(1)
    (m,) = ob.relay.wait_for(1)
    assert m["mail_from"] == "app@example.com"
    assert m["rcpt_tos"] == ["bob@example.org", "carol@example.org", "hidden@example.net"]
    assert_data(m["data"],
                b"To: Bob <bob@example.org>\r\nSubject: Contact form\r\n"
                b"From: Web <web@example.org>\r\nCc: carol@example.org\r\n"
                b"{DATE}{MSGID}\r\nHi.\r\n\r\n")   # PHP added CRLF after "Hi.\n"


def test_php_mail_without_home_like_php_fpm(relay, outbox, tmp_path):
    # PHP-FPM often runs with an empty environment: no HOME, no LOGNAME.
    ob = outbox(relay())
    w = Wrapper(ob, tmp_path)
    need("php")
    res = subprocess.run(
        ["php", "-n", "-d", "sendmail_path=%s -t -i" % w.path, "-r", PHP_MAIL % ""],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={}, cwd=str(tmp_path),
        timeout=60)
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    w.assert_clean(1)
    (m,) = ob.relay.wait_for(1)
    assert m["mail_from"] == "app@example.com" and m["rcpt_tos"] == ["bob@example.org"]
    assert_data(m["data"],
                b"To: bob@example.org\r\nSubject: Hello from PHP\r\n"
                b"X-Mailer: outbox-test\r\n{FROM}{DATE}{MSGID}"
                b"\r\nline1\r\nline2\r\n.\r\n..two\r\nend\r\n")


def test_php_mail_is_true_when_the_relay_is_down_and_q_delivers_later(relay, outbox,
                                                                     tmp_path):
    # PHP treats any non-zero exit as failure: queued-for-later must be 0.
    r = relay()
    ob = outbox(r)
    r.stop()                                   # relay down: connection refused
    w = Wrapper(ob, tmp_path)
    res = php(ob, tmp_path, w, PHP_MAIL % "")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    w.assert_clean(1)
    assert len([f for f in ob.queue_files() if not f.endswith(".st")]) == 1
    r.start()                                  # back, on the same port
    silent_ok(ob.run(["-q"]))
    (m,) = r.wait_for(1)
    assert m["rcpt_tos"] == ["bob@example.org"]
    assert_data(m["data"],
                b"To: bob@example.org\r\nSubject: Hello from PHP\r\n"
                b"X-Mailer: outbox-test\r\n{FROM}{DATE}{MSGID}"
                b"\r\nline1\r\nline2\r\n.\r\n..two\r\nend\r\n")
    assert ob.queue_files() == []


def test_php_mail_returns_false_when_outbox_refuses(relay, outbox, tmp_path):
    # A bad address in To: with -t: outbox exits 65, mail() returns false,
    # nothing is queued or sent.
    ob = outbox(relay())
    w = Wrapper(ob, tmp_path)
    res = php(ob, tmp_path, w,
              'exit(mail("bad address@example.org", "x", "y") ? 0 : 3);')
    assert res.returncode == 3, res
    assert w.statuses() == [65]
    assert w.stderr().startswith(b"sendmail: ") and w.stderr().count(b"\n") == 1
    assert ob.queue_files() == [] and ob.relay.messages == []


# -- bsd-mailx ------------------------------------------------------------------

def test_bsd_mailx_with_cc_and_bcc(relay, outbox, tmp_path):
    # bsd-mailx has no -S; it takes the program from "set sendmail=..." in
    # a startup file: $MAILRC names one (-n skips /etc/mail.rc).
    need("bsd-mailx")
    ob = outbox(relay())
    w = Wrapper(ob, tmp_path)
    rc = tmp_path / "mailrc"
    rc.write_text("set sendmail=%s\n" % w.path)
    res = run_program(["bsd-mailx", "-n", "-s", "Disk report", "-r", "from@example.org",
                       "-c", "carol@example.org", "-b", "hidden@example.net",
                       "bob@example.org"], ob, tmp_path,
                      input=b"disk 91% full\n.\nafter a dot line\n",
                      env={"MAILRC": str(rc), "LC_ALL": "C.UTF-8"})
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    w.assert_clean(1)
    assert w.calls() == [["-i", "-t", "-f", "from@example.org"]]
    (m,) = ob.relay.wait_for(1)
    assert m["mail_from"] == "from@example.org"
    # The Bcc recipient is an envelope recipient; its header is gone.
    assert m["rcpt_tos"] == ["bob@example.org", "carol@example.org", "hidden@example.net"]
    assert_data(m["data"],
                b"From: from@example.org\r\nTo: bob@example.org\r\n"
                b"Subject: Disk report\r\nCc: carol@example.org\r\n"
                b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n"
                b"Content-Transfer-Encoding: 8bit\r\n{DATE}{MSGID}"
                b"\r\ndisk 91% full\r\n.\r\nafter a dot line\r\n")
    assert not (ob.home and os.path.exists(os.path.join(ob.home, "dead.letter")))


# -- git send-email ---------------------------------------------------------------

def git(repo, *args, env):
    return subprocess.run(["git", "-C", str(repo)] + list(args), env=env, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def make_series(ob, tmp_path, *format_patch_args):
    """A throwaway repo with 3 commits; returns (repo, env, patch paths)."""
    need("git")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = ob.env({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                  "TZ": "UTC"})
    git(repo, "init", "-q", "-b", "main", env=env)
    git(repo, "config", "user.name", "Dev Eloper", env=env)
    git(repo, "config", "user.email", "dev@example.org", env=env)
    for i in (1, 2, 3):
        with open(repo / "f.txt", "a") as f:
            f.write("line %d\n" % i)
        git(repo, "add", "f.txt", env=env)
        cenv = dict(env, GIT_AUTHOR_DATE="2024-01-0%d 12:00:00 +0000" % i,
                    GIT_COMMITTER_DATE="2024-01-0%d 12:00:00 +0000" % i)
        git(repo, "commit", "-q", "-m", "Change number %d" % i,
            "-m", "Body of commit %d.\n.\nA lone dot above." % i, env=cenv)
    git(repo, "format-patch", "-q", "--no-signature", "-3", "-o", str(tmp_path / "p"),
        *format_patch_args, env=env)
    patches = sorted((tmp_path / "p").iterdir())
    assert len(patches) == 3
    assert all(re.match(rb"From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n", p.read_bytes())
               for p in patches)
    return repo, env, patches


@pytest.mark.parametrize("how", ["--sendmail-cmd=", "--smtp-server="])
def test_git_send_email_series(relay, outbox, tmp_path, how):
    # git 2.33+ has --sendmail-cmd; --smtp-server=<absolute path> is the
    # older spelling of the same thing.
    ob = outbox(relay())
    w = Wrapper(ob, tmp_path)
    repo, env, patches = make_series(ob, tmp_path)
    texts = [p.read_bytes() for p in patches]

    res = subprocess.run(
        ["git", "send-email", how + w.path, "--to=bob@example.org",
         "--from=dev@example.org", "--envelope-sender=dev@example.org",
         "--confirm=never", "--no-validate", "--quiet"] + [str(p) for p in patches],
        cwd=str(repo), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=120)
    assert res.returncode == 0, res.stderr
    w.assert_clean(3)
    # git passes -f <envelope sender> -i and the recipients, To then Cc.
    assert w.calls() == [["-f", "dev@example.org", "-i", "bob@example.org",
                          "dev@example.org"]] * 3
    msgs = ob.relay.wait_for(3)
    assert len(msgs) == 3
    first_id = None
    for k, (m, text) in enumerate(zip(msgs, texts), 1):
        assert m["mail_from"] == "dev@example.org"
        assert m["rcpt_tos"] == ["bob@example.org", "dev@example.org"]
        head, body = m["data"].split(b"\r\n\r\n", 1)
        hm = re.fullmatch(
            rb"From: dev@example\.org\r\nTo: bob@example\.org\r\n"
            rb"Cc: Dev Eloper <dev@example\.org>\r\n"
            rb"Subject: \[PATCH (\d)/3\] Change number (\d)\r\n"
            rb"Date: [A-Z][a-z]{2},  ?\d\d? [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n"
            rb"Message-Id: <([^>\r\n]+)>\r\n"
            rb"X-Mailer: git-send-email [0-9.]+\r\n"
            rb"(?:In-Reply-To: <([^>\r\n]+)>\r\nReferences: <([^>\r\n]+)>\r\n)?"
            rb"MIME-Version: 1\.0\r\nContent-Transfer-Encoding: 8bit", head)
        assert hm, head
        assert hm.group(1) == hm.group(2) == str(k).encode()   # in order
        if k == 1:
            first_id = hm.group(3)
            assert hm.group(4) is None                          # no threading
        else:
            assert hm.group(4) == hm.group(5) == first_id       # threaded on 1/3
        # The body is the patch's, in CRLF, after the in-body From: that
        # git adds because --from differs from the author; the mbox
        # "From <sha>" line is nowhere.
        patch_body = text.split(b"\n\n", 1)[1]
        assert body == (b"From: Dev Eloper <dev@example.org>\r\n\r\n"
                        + patch_body.replace(b"\n", b"\r\n"))
        assert b"Mon Sep 17 00:00:00 2001" not in m["data"]
        assert b"\r\n.\r\nA lone dot above.\r\n" in body


def test_format_patch_piped_to_sendmail_t(relay, outbox, tmp_path):
    # outbox(8) EXAMPLES: "sendmail -t < 0001-fix-typo.patch" (the patch
    # made with --to so that it has a To: field).
    ob = outbox(relay())
    repo, env, patches = make_series(ob, tmp_path, "--to=bob@example.org")
    text = patches[0].read_bytes()
    silent_ok(ob.run(["-t"], input=text))
    (m,) = ob.relay.wait_for(1)
    assert m["mail_from"] == "app@example.com"
    assert m["rcpt_tos"] == ["bob@example.org"]
    # The mbox line is dropped, everything else kept; without -i the lone
    # "." line in the commit message ends the input (as sendmail does).
    head, body = text.split(b"\n\n", 1)
    head = head.split(b"\n", 1)[1]
    assert b"\nTo: bob@example.org\n" in head + b"\n"
    want = (head.replace(b"\n", b"\r\n") + b"\r\n{MSGID}\r\n"
            + body.split(b"\n.\n", 1)[0].replace(b"\n", b"\r\n") + b"\r\n")
    assert_data(m["data"], want)


# -- swaks over -bs ---------------------------------------------------------------

@pytest.mark.parametrize("extra", [[], ["--pipeline"], ["--protocol", "SMTP"]],
                         ids=["ehlo", "pipeline", "helo"])
def test_swaks_over_bs(relay, outbox, tmp_path, extra):
    need("swaks")
    ob = outbox(relay())
    w = Wrapper(ob, tmp_path)
    res = run_program(["swaks", "--pipe", "%s -bs" % w.path, "--to",
                       "bob@example.org,carol@example.org", "--from", "a@example.org",
                       "--helo", "client.example.org", "--h-Subject", "swaks test",
                       "--body", "hello swaks\n.\n..dots"] + extra, ob, tmp_path)
    out = res.stdout.decode()
    assert res.returncode == 0, out + res.stderr.decode()
    w.assert_clean(1)
    assert w.calls() == [["-bs"]]
    assert "<-  220 example.com ESMTP outbox" in out
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as [0-9A-F]+\n", out), out
    assert "<-  221 2.0.0 Bye" in out
    assert "<** " not in out and "<~* " not in out     # no error replies
    if extra == ["--pipeline"]:
        # MAIL, RCPT, RCPT and DATA went out before the first reply came back.
        assert re.search(r" -> MAIL FROM:<a@example.org>\n -> RCPT TO:<bob@example.org>\n"
                         r" -> RCPT TO:<carol@example.org>\n -> DATA\n<-  250 2\.1\.0 Ok\n",
                         out), out
    if extra == ["--protocol", "SMTP"]:
        assert " -> HELO client.example.org" in out and "EHLO" not in out
    (m,) = ob.relay.wait_for(1)
    assert m["mail_from"] == "a@example.org"
    assert m["rcpt_tos"] == ["bob@example.org", "carol@example.org"]
    # swaks writes Date, To, From, Subject, Message-Id and X-Mailer itself:
    # outbox adds nothing; the body's dot lines are unstuffed by -bs.
    assert_data(m["data"],
                b"Date: {ANY}\r\nTo: bob@example.org,carol@example.org\r\n"
                b"From: a@example.org\r\nSubject: swaks test\r\n"
                b"Message-Id: {ANY}\r\nX-Mailer: swaks {ANY}\r\n"
                b"\r\nhello swaks\r\n.\r\n..dots\r\n\r\n\r\n")


# -- Python smtplib over a pipe to -bs ------------------------------------------------

class PipeSMTP:
    """./sendmail -bs on one end of a socketpair, given as its stdin and
    stdout; smtplib talks to the other end as if it were a TCP socket."""

    def __init__(self, ob, args=("-bs",)):
        self.mine, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [ob.binary, "-C", ob.conf_path] + list(args), stdin=theirs,
            stdout=theirs, stderr=subprocess.PIPE, env=ob.env())
        theirs.close()
        mine = self.mine

        class _SMTP(smtplib.SMTP):
            def _get_socket(self, host, port, timeout):
                mine.settimeout(timeout)
                return mine

        self.smtp = _SMTP(timeout=30)
        self.banner = self.smtp.connect("outbox-bs", 25)

    def finish(self):
        """After QUIT: the exit status and stderr."""
        self.smtp.close()
        err = self.proc.stderr.read()
        return self.proc.wait(timeout=30), err

    def kill(self):
        self.mine.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stderr.close()


@pytest.fixture
def pipe_smtp():
    """pipe_smtp(ob) -> PipeSMTP; each one is ended at teardown."""
    started = []

    def start(ob, args=("-bs",)):
        p = PipeSMTP(ob, args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def test_smtplib_session_over_pipe(relay, outbox, pipe_smtp):
    r = relay(dsn=True)
    ob = outbox(r)
    p = pipe_smtp(ob)
    s = p.smtp
    assert p.banner == (220, b"example.com ESMTP outbox")
    code, text = s.ehlo("client.example.org")
    assert code == 250
    assert text.decode().splitlines() == ["example.com", "PIPELINING", "SIZE", "8BITMIME",
                                          "DSN", "SMTPUTF8", "ENHANCEDSTATUSCODES"]
    assert s.noop() == (250, b"2.0.0 Ok")
    # Garbage and out-of-order commands: an error reply, and the session goes on.
    assert s.docmd("FROBNICATE", "x")[0] == 500
    assert s.docmd("MAIL", "bob@example.org")[0] == 501          # no FROM:<>
    assert s.docmd("RCPT", "TO:<bob@example.org>")[0] == 503     # no MAIL yet
    assert s.docmd("DATA")[0] == 554                             # no recipients
    assert s.docmd("MAIL", "FROM:<a@example.org> FOO=BAR")[0] == 555
    assert s.docmd("STARTTLS")[0] == 502
    # Message 1: two recipients with DSN parameters, passed on to the relay.
    assert s.mail("one@example.org", ["RET=HDRS", "ENVID=m1"]) == (250, b"2.1.0 Ok")
    assert s.rcpt("bob@example.org", ["NOTIFY=SUCCESS"]) == (250, b"2.1.5 Ok")
    assert s.rcpt("carol@example.org", ["ORCPT=rfc822;Carol+2B1@Example.org"]) == (
        250, b"2.1.5 Ok")
    code, text = s.data(b"Subject: one\r\n\r\nfirst\r\n.dot\r\n")
    assert code == 250 and re.fullmatch(rb"2\.0\.0 Ok: queued as [0-9A-F]+", text), text
    # Message 2: abandoned with RSET, never delivered.
    assert s.mail("two@example.org")[0] == 250
    assert s.rcpt("nobody@example.org")[0] == 250
    assert s.rset() == (250, b"2.0.0 Ok")
    assert s.docmd("RCPT", "TO:<nobody@example.org>")[0] == 503  # RSET forgot MAIL
    assert s.noop()[0] == 250
    # Message 3: with sendmail(), which sends its own RSET... and SIZE.
    assert s.sendmail("three@example.org", ["dave@example.org"],
                      b"Subject: three\r\nFrom: t@example.org\r\n\r\nthird\r\n") == {}
    assert s.docmd("VRFY", "bob")[0] == 252
    assert s.quit() == (221, b"2.0.0 Bye")
    status, err = p.finish()
    assert status == 0 and err == b""
    m1, m3 = r.wait_for(2)
    assert len(r.messages) == 2
    assert m1["mail_from"] == "one@example.org"
    assert m1["rcpt_tos"] == ["bob@example.org", "carol@example.org"]
    assert [o for o in m1["mail_options"] if not o.startswith("SIZE=")] == ["RET=HDRS",
                                                                            "ENVID=m1"]
    assert m1["rcpt_options"] == [["NOTIFY=SUCCESS"], ["ORCPT=rfc822;Carol+2B1@Example.org"]]
    assert_data(m1["data"], b"Subject: one\r\n{FROM}{DATE}{MSGID}\r\nfirst\r\n.dot\r\n")
    assert m3["mail_from"] == "three@example.org"
    assert m3["rcpt_tos"] == ["dave@example.org"]
    assert_data(m3["data"], b"Subject: three\r\nFrom: t@example.org\r\n{DATE}{MSGID}"
                            b"\r\nthird\r\n")
    assert ob.queue_files() == []


def test_smtplib_helo_and_quit_without_mail(relay, outbox, pipe_smtp):
    r = relay()
    ob = outbox(r)
    p = pipe_smtp(ob)
    assert p.smtp.helo("client.example.org") == (250, b"example.com")
    assert p.smtp.docmd("HELP")[0] == 214
    assert p.smtp.quit()[0] == 221
    assert p.finish() == (0, b"")
    assert r.messages == [] and r.connections == 0


# -- -bs and DSN parameters (RFC 3461) ---------------------------------------------

BS_MSG = b"Subject: dsn\r\n\r\nbody\r\n"


@pytest.mark.parametrize("verb, params", [
    ("RCPT", ["NOTIFY="]),
    ("RCPT", ["NOTIFY=NEVER,SUCCESS"]),
    ("RCPT", ["NOTIFY=SUCCESS", "NOTIFY=FAILURE"]),
    ("RCPT", ["ORCPT=rfc822;a@example.org", "ORCPT=rfc822;b@example.org"]),
    ("MAIL", ["RET=FULL", "RET=HDRS"]),
    ("MAIL", ["ENVID=a", "ENVID=b"]),
])
def test_bs_refuses_malformed_dsn_parameters(relay, outbox, pipe_smtp, verb, params):
    # RFC 3461 4.1-4.4: NOTIFY is NEVER or a non-empty list of SUCCESS,
    # FAILURE, DELAY; each parameter at most once.  Postfix answers these
    # with "501 5.5.4 Error: Bad NOTIFY parameter syntax" and the like.
    r = relay(dsn=True)
    ob = outbox(r)
    s = pipe_smtp(ob).smtp
    s.ehlo("client.example.org")
    if verb == "MAIL":
        code = s.mail("a@example.org", params)[0]
        s.rcpt("bob@example.org")
    else:
        s.mail("a@example.org")
        code = s.rcpt("bob@example.org", params)[0]
    try:
        data_code = s.data(BS_MSG)[0]
    except smtplib.SMTPDataError as e:
        data_code = e.smtp_code
    s.quit()
    assert (code, data_code) == (501, 554)
    assert r.messages == [] and ob.queue_files() == []


def test_bs_accepts_long_rcpt_line_with_orcpt(relay, outbox, pipe_smtp):
    r = relay(dsn=True)
    ob = outbox(r)
    s = pipe_smtp(ob).smtp
    s.ehlo("client.example.org")
    addr = "a" * 64 + "@" + ".".join(["long-subdomain-label"] * 8) + ".example.org"  # 241
    orcpt = "ORCPT=rfc822;" + addr
    line = "RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE,DELAY %s\r\n" % (addr, orcpt)
    assert 512 < len(line) < 1012
    assert s.mail("a@example.org", ["RET=HDRS", "ENVID=" + "E" * 100])[0] == 250
    assert s.rcpt(addr, ["NOTIFY=SUCCESS,FAILURE,DELAY", orcpt])[0] == 250
    assert s.data(BS_MSG)[0] == 250
    s.quit()
    (m,) = r.wait_for(1)
    assert m["rcpt_tos"] == [addr]
    assert m["rcpt_options"] == [["NOTIFY=SUCCESS,FAILURE,DELAY", orcpt]]


# -- callers that give up mid-message ------------------------------------------------

BS_START = (b"EHLO client.example.org\r\nMAIL FROM:<app@example.org>\r\n"
            b"RCPT TO:<bob@example.org>\r\nDATA\r\n")


@pytest.mark.parametrize("tail", [
    b"",                                                 # gone right after 354
    b"Subject: cut\r\n\r\npartial",                     # mid-line
    b"Subject: cut\r\n\r\nfirst half\r\n",               # after a whole line
], ids=["after-354", "mid-line", "after-line"])
def test_bs_client_gone_mid_data_sends_nothing(relay, outbox, tail):
    # A Symfony/Laravel worker killed by max_execution_time, or a crashed
    # client: without the final "." the message is incomplete and must be
    # dropped (RFC 5321 4.1.1.4), never queued or sent.
    r = relay()
    ob = outbox(r)
    res = ob.run(["-bs", "-i"], input=BS_START + tail)
    assert res.stderr == b""
    # after the 354, at most a 451 that nobody reads: never a 250
    tail_replies = res.stdout.split(b"354 End data with <CR><LF>.<CR><LF>\r\n", 1)[1]
    assert tail_replies in (b"", b"451 4.3.0 the input ended before the final dot: "
                            b"message not accepted\r\n"), res.stdout
    assert b"queued" not in res.stdout
    assert ob.queue_files() == [] and r.messages == []


def test_bs_session_ended_without_quit_after_a_whole_message(relay, outbox):
    # Clients that just close the pipe after the final reply: the message
    # they got 250 for is delivered, and the exit status is 0.
    r = relay()
    ob = outbox(r)
    res = ob.run(["-bs"], input=BS_START + b"Subject: whole\r\n\r\nbody\r\n.\r\n")
    assert res.returncode == 0 and res.stderr == b""
    assert re.search(rb"\r\n250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n$", res.stdout), res.stdout
    (m,) = r.wait_for(1)
    assert_data(m["data"], b"Subject: whole\r\n{FROM}{DATE}{MSGID}\r\nbody\r\n")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["nodemailer-SIGINT", "SIGTERM", "gitea-timeout-SIGKILL"])
def test_caller_aborts_mid_message_nothing_queued(relay, outbox, sig):
    # nodemailer aborts with SIGINT, Gitea's context timeout kills: nothing
    # may be queued or sent from an input that did not end.
    r = relay()
    ob = outbox(r)
    p = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-i", "-f", "app@example.org",
                          "bob@example.org"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ob.env())
    try:
        p.stdin.write(b"From: app@example.org\r\nTo: bob@example.org\r\n"
                      b"Subject: cut\r\n\r\n" + b"y" * 100000)
        p.stdin.flush()
        deadline = time.monotonic() + 10
        tmp = os.path.join(ob.spool, "tmp")
        while not (os.path.isdir(tmp) and os.listdir(tmp)):     # it is reading
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.02)
        p.send_signal(sig)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode != 0
    assert ob.queue_files() == [] and r.messages == []
    silent_ok(ob.run(["-q"]))                 # a flush finds nothing to send
    assert r.messages == []


# == Part 2: the exact command lines of common callers ========================
#
# Each case: argv, the input, config sections, the envelope wanted and the
# message wanted byte for byte ({DATE}, {MSGID}, {FROM}: added by outbox).

ROOT_ALIAS = {"aliases": {"root": "ops@example.org"}}

CALLERS = [
    pytest.param(
        ["-t", "-i"],
        b"To: bob@example.org\r\nSubject: PHP\r\nX-PHP-Originating-Script: 33:index.php\r\n"
        b"\r\nline1\nline2\n.\nend\r\n",
        {}, {}, "app@example.com", ["bob@example.org"],
        b"To: bob@example.org\r\nSubject: PHP\r\nX-PHP-Originating-Script: 33:index.php\r\n"
        b"{FROM}{DATE}{MSGID}\r\nline1\r\nline2\r\n.\r\nend\r\n",
        id="php-mail"),
    pytest.param(
        ["-fbounce@example.org", "-i", "-t"],
        b"Date: Mon, 1 Jan 2024 12:00:00 +0000\r\nTo: Bob <bob@example.org>\r\n"
        b"From: WordPress <wordpress@example.org>\r\nBcc: hidden@example.net\r\n"
        b"Subject: New comment\r\nMessage-ID: <abc123@example.org>\r\n"
        b"X-Mailer: PHPMailer 6.8.0 (https://github.com/PHPMailer/PHPMailer)\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        b"\r\nA new comment.\r\n",
        {}, {}, "bounce@example.org", ["bob@example.org", "hidden@example.net"],
        b"Date: Mon, 1 Jan 2024 12:00:00 +0000\r\nTo: Bob <bob@example.org>\r\n"
        b"From: WordPress <wordpress@example.org>\r\n"
        b"Subject: New comment\r\nMessage-ID: <abc123@example.org>\r\n"
        b"X-Mailer: PHPMailer 6.8.0 (https://github.com/PHPMailer/PHPMailer)\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        b"\r\nA new comment.\r\n",
        id="phpmailer"),
    pytest.param(
        ["-oi", "-fbounce@example.org", "-t"],
        b"To: bob@example.org\nFrom: shop@example.org\nBcc: audit@example.net\n"
        b"Subject: Order 42\n\nThanks.\n",
        {}, {}, "bounce@example.org", ["bob@example.org", "audit@example.net"],
        b"To: bob@example.org\r\nFrom: shop@example.org\r\nSubject: Order 42\r\n"
        b"{DATE}{MSGID}\r\nThanks.\r\n",
        id="phpmailer-old"),
    pytest.param(
        ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
        "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@vm> /usr/local/bin/job\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
        "Content-Transfer-Encoding: 8bit\nX-Cron-Env: <SHELL=/bin/sh>\n"
        "X-Cron-Env: <HOME=/root>\nX-Cron-Env: <LOGNAME=root>\n\n"
        "job output: caf\u00e9\n.\nmore\n".encode(),
        ROOT_ALIAS, {}, "app@example.com", ["ops@example.org"],
        "To: root\r\nSubject: Cron <root@vm> /usr/local/bin/job\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\nX-Cron-Env: <SHELL=/bin/sh>\r\n"
        "X-Cron-Env: <HOME=/root>\r\nX-Cron-Env: <LOGNAME=root>\r\n"
        "From: Cron Daemon <app@example.com>\r\n{DATE}{MSGID}"
        "\r\njob output: caf\u00e9\r\n.\r\nmore\r\n".encode(),
        id="debian-cron"),
    pytest.param(
        ["-FAnacron", "-odi", "ops@example.org"],
        b"From: Anacron <root>\nTo: ops@example.org\nContent-Type: text/plain; "
        b"charset=\"ANSI_X3.4-1968\"\nSubject: Anacron job 'cron.daily' on vm\n\n"
        b"/etc/cron.daily/logrotate:\nerror: skipping\n.\nnot part of the message\n",
        {}, {}, "app@example.com", ["ops@example.org"],
        b"To: ops@example.org\r\nContent-Type: text/plain; charset=\"ANSI_X3.4-1968\"\r\n"
        b"Subject: Anacron job 'cron.daily' on vm\r\n"
        b"From: Anacron <app@example.com>\r\n{DATE}{MSGID}"
        b"\r\n/etc/cron.daily/logrotate:\r\nerror: skipping\r\n",
        id="anacron"),
    pytest.param(
        ["-ti"],
        b"To: root\nSubject: cron: /etc/periodic/hourly\n\nhourly output\n.\n",
        ROOT_ALIAS, {}, "app@example.com", ["ops@example.org"],
        b"To: root\r\nSubject: cron: /etc/periodic/hourly\r\n{FROM}{DATE}{MSGID}"
        b"\r\nhourly output\r\n.\r\n",
        id="busybox-crond"),
    pytest.param(
        ["-f", "dev@example.org", "-i", "bob@example.org", "dev@example.org"],
        b"From 1a1f61245d2ae181774f326dfd6e60a384616f00 Mon Sep 17 00:00:00 2001\n"
        b"From: Dev Eloper <dev@example.org>\nDate: Mon, 1 Jan 2024 12:00:00 +0000\n"
        b"Subject: [PATCH] Fix the frobnicator\nMessage-Id: <20240101120000.1-1-dev@example.org>\n"
        b"To: bob@example.org\nCc: dev@example.org\n\n---\n f.txt | 1 +\n\n"
        b"diff --git a/f.txt b/f.txt\n--- a/f.txt\n+++ b/f.txt\n@@ -1 +1,2 @@\n line 1\n+.\n",
        {}, {}, "dev@example.org", ["bob@example.org", "dev@example.org"],
        b"From: Dev Eloper <dev@example.org>\r\nDate: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
        b"Subject: [PATCH] Fix the frobnicator\r\n"
        b"Message-Id: <20240101120000.1-1-dev@example.org>\r\n"
        b"To: bob@example.org\r\nCc: dev@example.org\r\n\r\n---\r\n f.txt | 1 +\r\n\r\n"
        b"diff --git a/f.txt b/f.txt\r\n--- a/f.txt\r\n+++ b/f.txt\r\n@@ -1 +1,2 @@\r\n"
        b" line 1\r\n+.\r\n",
        id="git-send-email"),
    pytest.param(
        ["-oem", "-oi", "-B8BITMIME", "-f", "alice@example.org", "-N", "failure,delay",
         "-R", "hdrs", "--", "bob@example.org", "carol@example.org"],
        "Date: Mon, 1 Jan 2024 12:00:00 +0100\nFrom: Alice <alice@example.org>\n"
        "To: bob@example.org\nCc: carol@example.org\nSubject: R\u00e9union\n"
        "Message-ID: <20240101110000.GA1234@example.org>\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Disposition: inline\n"
        "Content-Transfer-Encoding: 8bit\nUser-Agent: Mutt/2.2.9 (2022-11-12)\n\n"
        "\u00c0 demain.\n.\n-- \nAlice\n".encode(),
        {}, {"dsn": True}, "alice@example.org", ["bob@example.org", "carol@example.org"],
        "Date: Mon, 1 Jan 2024 12:00:00 +0100\r\nFrom: Alice <alice@example.org>\r\n"
        "To: bob@example.org\r\nCc: carol@example.org\r\nSubject: R\u00e9union\r\n"
        "Message-ID: <20240101110000.GA1234@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n"
        "Content-Transfer-Encoding: 8bit\r\nUser-Agent: Mutt/2.2.9 (2022-11-12)\r\n\r\n"
        "\u00c0 demain.\r\n.\r\n-- \r\nAlice\r\n".encode(),
        id="mutt"),
    pytest.param(
        ["-i", "-t", "-f", "from@example.org"],
        b"From: from@example.org\nTo: bob@example.org\nSubject: mailx\n"
        b"Bcc: hidden@example.net\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=\"UTF-8\"\nContent-Transfer-Encoding: 8bit\n\n"
        b"body\n",
        {}, {}, "from@example.org", ["bob@example.org", "hidden@example.net"],
        b"From: from@example.org\r\nTo: bob@example.org\r\nSubject: mailx\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n{DATE}{MSGID}\r\nbody\r\n",
        id="bsd-mailx"),
    pytest.param(
        ["-i", "-F", "Alice Example", "-f", "alice@example.org", "--", "bob@example.org"],
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\nFrom: Alice Example <alice@example.org>\n"
        b"To: bob@example.org\nSubject: s-nail\n"
        b"Message-ID: <20240101120000.abcd@example.org>\nUser-Agent: s-nail v14.9.24\n\n"
        b"hello\n.\n",
        {}, {}, "alice@example.org", ["bob@example.org"],
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nFrom: Alice Example <alice@example.org>\r\n"
        b"To: bob@example.org\r\nSubject: s-nail\r\n"
        b"Message-ID: <20240101120000.abcd@example.org>\r\nUser-Agent: s-nail v14.9.24\r\n"
        b"\r\nhello\r\n.\r\n",
        id="s-nail"),
    pytest.param(
        ["-oi", "-f", "ops@host.example.org", "-t"],
        b"To: bob@example.org\nSubject: report\nX-Mailer: mail (GNU Mailutils 3.15)\n\n"
        b"report body\n",
        {}, {}, "ops@host.example.org", ["bob@example.org"],
        b"To: bob@example.org\r\nSubject: report\r\nX-Mailer: mail (GNU Mailutils 3.15)\r\n"
        b"{FROM}{DATE}{MSGID}\r\nreport body\r\n",
        id="gnu-mailutils"),
    pytest.param(
        ["-oi", "-t"],
        b"MIME-Version: 1.0\nContent-Type: text/plain; charset=\"utf-8\"\n"
        b"Content-Transfer-Encoding: 8bit\nSubject: unattended-upgrades result for vm: True\n"
        b"From: root\nTo: root\n\nUnattended upgrade result: All upgrades installed\n",
        ROOT_ALIAS, {}, "app@example.com", ["ops@example.org"],
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"Subject: unattended-upgrades result for vm: True\r\nTo: root\r\n"
        b"From: app@example.com\r\n{DATE}{MSGID}"
        b"\r\nUnattended upgrade result: All upgrades installed\r\n",
        id="unattended-upgrades"),
    pytest.param(
        ["-i", "-f", "app@example.org", "--", "bob@example.org"],
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\nFrom: app@example.org\nTo: bob@example.org\n"
        b"Message-ID: <65a1b2c3d4e5f_1234@host.mail>\nSubject: Welcome\nMime-Version: 1.0\n"
        b"Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 7bit\n\n"
        b"Hello Bob\n.\n",
        {}, {}, "app@example.org", ["bob@example.org"],
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nFrom: app@example.org\r\n"
        b"To: bob@example.org\r\nMessage-ID: <65a1b2c3d4e5f_1234@host.mail>\r\n"
        b"Subject: Welcome\r\nMime-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n\r\nHello Bob\r\n.\r\n",
        id="ruby-mail"),
    pytest.param(
        ["-i", "-f", "app@example.org", "bob@example.org", "hidden@example.net"],
        b"Content-Type: text/plain; charset=utf-8\r\nFrom: app@example.org\r\n"
        b"To: bob@example.org\r\nBcc: hidden@example.net\r\nSubject: Hello\r\n"
        b"Message-ID: <0c1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8@example.org>\r\n"
        b"Content-Transfer-Encoding: 7bit\r\nDate: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n\r\nHello from node\r\n",
        {}, {}, "app@example.org", ["bob@example.org", "hidden@example.net"],
        b"Content-Type: text/plain; charset=utf-8\r\nFrom: app@example.org\r\n"
        b"To: bob@example.org\r\nSubject: Hello\r\n"
        b"Message-ID: <0c1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8@example.org>\r\n"
        b"Content-Transfer-Encoding: 7bit\r\nDate: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n\r\nHello from node\r\n",
        id="nodemailer"),
    pytest.param(
        ["-f", "<>", "-i", "bob@example.org"],
        b"From: Gitea <gitea@example.org>\r\nTo: bob@example.org\r\n"
        b"Subject: [org/repo] New issue #1\r\nDate: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
        b"Message-ID: <org/repo/issues/1@example.org>\r\nAuto-Submitted: auto-generated\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        b"Issue opened.\r\n",
        {}, {}, "", ["bob@example.org"],
        b"From: Gitea <gitea@example.org>\r\nTo: bob@example.org\r\n"
        b"Subject: [org/repo] New issue #1\r\nDate: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
        b"Message-ID: <org/repo/issues/1@example.org>\r\nAuto-Submitted: auto-generated\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        b"Issue opened.\r\n",
        id="gitea-null-sender"),
]


@pytest.mark.parametrize("argv, data, conf, relay_kw, sender, rcpts, want", CALLERS)
def test_caller_argv(relay, outbox, argv, data, conf, relay_kw, sender, rcpts, want):
    r = relay(**relay_kw)
    ob = outbox(r, **conf)
    silent_ok(ob.run(argv, input=data))
    (m,) = r.wait_for(1)
    assert m["mail_from"] == sender
    assert m["rcpt_tos"] == rcpts
    assert_data(m["data"], want)
    assert ob.queue_files() == []            # delivered, nothing left


def test_caller_argv_mutt_dsn_and_8bit_reach_the_relay(relay, outbox):
    # mutt's -N and -R become DSN parameters when the relay offers DSN,
    # and -B8BITMIME becomes BODY=8BITMIME.
    r = relay(dsn=True)
    ob = outbox(r)
    silent_ok(ob.run(["-oem", "-oi", "-B8BITMIME", "-f", "alice@example.org",
                      "-N", "failure,delay", "-R", "hdrs", "--", "bob@example.org",
                      "carol@example.org"],
                     input="Subject: cafe\n\n\u00e9t\u00e9\n".encode()))
    (m,) = r.wait_for(1)
    assert m["mail_options"] == ["SIZE=%d" % len(m["data"]), "BODY=8BITMIME", "RET=HDRS"]
    assert m["rcpt_options"] == [["NOTIFY=FAILURE,DELAY"], ["NOTIFY=FAILURE,DELAY"]]
    # Raw UTF-8 in a header field (mutt with send_charset=utf-8) makes it
    # an SMTPUTF8 message as well.
    r.clear()
    silent_ok(ob.run(["-oem", "-oi", "-B8BITMIME", "-f", "alice@example.org",
                      "-N", "never", "-R", "full", "--", "bob@example.org"],
                     input="Subject: caf\u00e9\n\n\u00e9t\u00e9\n".encode()))
    (m,) = r.wait_for(1)
    assert m["mail_options"] == ["SIZE=%d" % len(m["data"]), "BODY=8BITMIME", "SMTPUTF8",
                                 "RET=FULL"]
    assert m["rcpt_options"] == [["NOTIFY=NEVER"]]


def test_caller_argv_debian_cron_8bitmime(relay, outbox):
    r = relay()
    ob = outbox(r, aliases={"root": "ops@example.org"})
    silent_ok(ob.run(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                     input="Subject: x\n\ncaf\u00e9\n".encode()))
    (m,) = r.wait_for(1)
    assert "BODY=8BITMIME" in m["mail_options"]


def test_caller_laravel_bs_i(relay, outbox):
    # Symfony Mailer's SendmailTransport: "sendmail -bs -i" (Laravel's
    # default path); it reads each reply before the next command, but a
    # pipe lets us send the whole dialogue at once (outbox offers PIPELINING).
    r = relay()
    ob = outbox(r)
    dialogue = (b"EHLO [127.0.0.1]\r\nMAIL FROM:<laravel@example.org>\r\n"
                b"RCPT TO:<bob@example.org>\r\nDATA\r\n"
                b"From: Laravel <laravel@example.org>\r\nTo: bob@example.org\r\n"
                b"Subject: Welcome\r\nMessage-ID: <abc@example.org>\r\n"
                b"MIME-Version: 1.0\r\nDate: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                b"Hello\r\n..\r\n...x\r\n.\r\nQUIT\r\n")
    res = ob.run(["-bs", "-i"], input=dialogue)
    assert res.returncode == 0 and res.stderr == b""
    assert re.fullmatch(
        rb"220 example\.com ESMTP outbox\r\n"
        rb"250-example\.com\r\n250-PIPELINING\r\n250-SIZE\r\n250-8BITMIME\r\n"
        rb"250-DSN\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n"
        rb"250 2\.1\.0 Ok\r\n250 2\.1\.5 Ok\r\n354 End data with <CR><LF>\.<CR><LF>\r\n"
        rb"250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n221 2\.0\.0 Bye\r\n", res.stdout), res.stdout
    (m,) = r.wait_for(1)
    assert m["mail_from"] == "laravel@example.org"
    assert m["rcpt_tos"] == ["bob@example.org"]
    assert m["data"] == (b"From: Laravel <laravel@example.org>\r\nTo: bob@example.org\r\n"
                         b"Subject: Welcome\r\nMessage-ID: <abc@example.org>\r\n"
                         b"MIME-Version: 1.0\r\nDate: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
                         b"Content-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                         b"Hello\r\n.\r\n..x\r\n")


def test_caller_network_hook_q_flushes_the_queue(relay, outbox):
    # if-up.d/ppp hooks run "sendmail -q" and ignore its output.
    r = relay()
    ob = outbox(r)
    silent_ok(ob.run(["-odq", "-i", "bob@example.org"], input=b"Subject: later\n\nq\n"))
    assert r.messages == [] and len(ob.queue_files()) >= 1
    silent_ok(ob.run(["-q"]))
    (m,) = r.wait_for(1)
    assert m["rcpt_tos"] == ["bob@example.org"] and m["mail_from"] == "app@example.com"
    assert_data(m["data"], b"Subject: later\r\n{FROM}{DATE}{MSGID}\r\nq\r\n")
    assert ob.queue_files() == []
    silent_ok(ob.run(["-q"]))              # nothing left: still quiet
    assert len(r.messages) == 1
