"""Allocation failure injection, in the spirit of curl's torture tests.

OUTBOX_FAIL_ALLOC=N makes the Nth allocation through xmalloc() and its
family fail as if malloc() had returned NULL (util/crash.h); =0 only
counts, and OUTBOX_ALLOC_COUNT=FILE collects each process's count. Each
scenario first counts the allocations of a normal run, then runs once
with every N from 1 to that count (or, for a large count, a
deterministic sample of at least 200 points that includes the first 50)
and checks, every time:

  - no crash: no signal, no sanitizer report;
  - exit 0 when the failure was not reached, else 71 (EX_OSERR) with one
    line on stderr; in -bs, a 421 reply ends the session instead;
  - nothing lost: whatever the caller was told was taken (exit 0, or 250
    after DATA) is delivered, or is delivered by the next plain -q;
  - the spool stays sound: tmp/ holds nothing, a plain `sendmail -q`
    exits 0 or 75 and leaves the queue empty, and mailq works.

Figures (allocations counted, points run, failures reached) are printed;
run with -s to see them.
"""
import json
import os
import re
import signal
import subprocess

import pytest

SAMPLE = 200        # points run at most, for a large count
FIRST = 50          # always run 1..FIRST
SANITIZER = re.compile(rb"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                       rb"runtime error:")
OOM_LINE = re.compile(rb"^sendmail: out of memory \(\d+( x \d+)? bytes\)$")
QUEUE_ID = re.compile(rb"\b[0-9A-F]{12,}\b")


def points(count):
    """1..count, or FIRST points then an even spread up to count."""
    if count <= SAMPLE:
        return list(range(1, count + 1))
    rest = SAMPLE - FIRST
    spread = {FIRST + 1 + (count - FIRST - 1) * i // (rest - 1) for i in range(rest)}
    return list(range(1, FIRST + 1)) + sorted(spread)


class Torture:
    """One scenario: run(env) does the work once and returns what the
    caller was told was taken ({token}); check() looks at the spool."""

    def __init__(self, name, ob, deliver, relay, tmp_path):
        self.name = name
        self.ob = ob                # the config the tortured runs use
        self.deliver = deliver      # same spool, with the relay: plain -q
        self.relay = relay
        self.counts = str(tmp_path / ("%s.counts" % name))
        self.serial = 0

    def env(self, n):
        if os.path.exists(self.counts):
            os.unlink(self.counts)
        return {"OUTBOX_FAIL_ALLOC": str(n), "OUTBOX_ALLOC_COUNT": self.counts}

    def reported(self):
        """The allocation counts the processes of the last run reported."""
        with open(self.counts) as f:
            return [int(line) for line in f]

    def token(self):
        self.serial += 1
        return "%s-%04d" % (self.name, self.serial)

    def delivered(self):
        """Tokens the relay received, bounces (which quote them) aside."""
        seen = set()
        for m in self.relay.messages:
            head = m["data"].split(b"\r\n\r\n", 1)[0]
            subject = re.search(rb"^Subject: (\S+)", head, re.M)
            if m["mail_from"] != "" and subject:
                seen.add(subject.group(1).decode())
        return seen

    def settle(self, taken):
        """The spool is sound and nothing taken is lost."""
        tmp = os.path.join(self.ob.spool, "tmp")
        assert not os.path.isdir(tmp) or os.listdir(tmp) == [], \
            "a failed run left files in tmp/"
        res = self.deliver.run(["-q"])
        assert res.returncode in (0, 75), res.stderr
        assert self.ob.queue_files() == [], "the plain -q left mail queued"
        q = self.deliver.run(["-bp", "--json"])
        assert q.returncode == 0 and json.loads(q.stdout) == []
        lost = taken - self.delivered()
        assert lost == set(), "told the caller it was taken, then lost it"


def no_crash(res):
    assert res.returncode >= 0, "killed by signal %d" % -res.returncode
    assert not SANITIZER.search(res.stderr), res.stderr.decode(errors="replace")


def torture(t, once):
    """Count, then fail every (sampled) allocation of once(env)."""
    taken, res = once(t.env(0))
    assert res.returncode == 0, res.stderr
    count = max(t.reported())
    t.normal = set(QUEUE_ID.sub(b"ID", res.stderr).splitlines())
    t.settle(taken)
    reached = 0
    for n in points(count):
        taken, res = once(t.env(n))
        no_crash(res)
        hit = max(t.reported(), default=0) >= n
        reached += hit
        assert res.returncode == (71 if hit else 0), \
            "N=%d: exit %d, stderr %r" % (n, res.returncode, res.stderr)
        if hit:
            t.check_failure(t, res)
        t.settle(taken)
    print("\nallocation failures, %s: %d allocations counted, %d points run, "
          "%d failures reached" % (t.name, count, len(points(count)), reached))
    assert reached > 0


def one_line(t, res):
    """One line says memory ran out, last; any other line is one that a
    normal run prints too (a refused recipient)."""
    lines = QUEUE_ID.sub(b"ID", res.stderr).splitlines()
    assert lines and OOM_LINE.match(lines[-1]), res.stderr
    assert set(lines[:-1]) <= t.normal, res.stderr


@pytest.fixture
def dkim_key(tmp_path):
    path = str(tmp_path / "dkim.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", path],
                   check=True, capture_output=True)
    os.chmod(path, 0o600)
    return path


def test_submission_delivered_to_the_relay(relay, outbox, tmp_path):
    # STARTTLS + AUTH; one recipient refused: it is reported, and bounced
    r = relay(rcpt_rules={"gone@example.org": "550 5.1.1 no such user"})
    ob = outbox(r)
    t = Torture("relay", ob, ob, r, tmp_path)
    t.check_failure = one_line

    def once(env):
        tok = t.token()
        res = ob.run(["-i", "bob@example.org", "gone@example.org"], env=env,
                     input="Subject: %s\n\nhello\n" % tok)
        return ({tok} if res.returncode == 0 else set()), res

    torture(t, once)


def test_queue_only_submission_with_t_reencoding_and_dkim(relay, outbox, tmp_path,
                                                          dkim_key):
    r = relay()
    ob = outbox(None, dkim={"domain": "example.com", "selector": "s1",
                            "key_file": dkim_key})
    deliver = outbox(r)
    t = Torture("odq", ob, deliver, r, tmp_path)
    t.check_failure = one_line

    def once(env):
        tok = t.token()
        msg = ("From: Alice <app@example.com>\nTo: bob@example.org, carol\n"
               "Cc: dan@example.org\nBcc: erin@example.org\nSubject: %s\n\n"
               "caf\u00e9 %s\n" % (tok, "x" * 1200))
        res = ob.run(["-odq", "-t", "-i"], env=env, input=msg)
        return ({tok} if res.returncode == 0 else set()), res

    torture(t, once)


def bs_failure(t, res):
    """-bs: a 421 ends the session (stderr stays silent), or, before the
    session began, one line on stderr and no reply at all."""
    if res.stdout == b"":
        one_line(t, res)
        return
    assert res.stderr == b"", "nothing may be written to stderr during -bs"
    last = res.stdout.decode().split("\r\n")[-2]
    assert last.startswith("421 4.3.0 "), res.stdout


def test_smtp_session(relay, outbox, tmp_path):
    r = relay()
    ob = outbox(None)
    deliver = outbox(r)
    t = Torture("bs", ob, deliver, r, tmp_path)
    t.check_failure = bs_failure

    def once(env):
        toks = [t.token(), t.token()]
        lines = ["EHLO client.example"]
        for i, tok in enumerate(toks):
            lines += ["MAIL FROM:<app@example.org> BODY=8BITMIME RET=HDRS",
                      "RCPT TO:<bob@example.org> NOTIFY=FAILURE",
                      "RCPT TO:<carol>", "DATA", "Subject: %s" % tok, "",
                      "message %d" % i, "..dotted", "."]
        lines += ["QUIT"]
        res = ob.run(["-bs"], env=env,
                     input="".join(l + "\r\n" for l in lines).encode())
        replies = [l for l in res.stdout.decode().split("\r\n")
                   if not re.match(r"^\d{3}-", l)]
        # the reply to DATA's end: after each 354
        told = [replies[i + 1] for i, l in enumerate(replies[:-1]) if l.startswith("354")]
        taken = {tok for tok, reply in zip(toks, told) if reply.startswith("250 ")}
        if res.returncode == 0:
            assert len(taken) == 2 and replies[-2] == "221 2.0.0 Bye"
        return taken, res

    torture(t, once)


def test_flush_of_a_few_queued_messages(relay, outbox, tmp_path):
    # three messages, one for a refused recipient: a bounce is queued and
    # sent in the same pass
    r = relay(rcpt_rules={"gone@example.org": "550 5.1.1 no such user"})
    ob = outbox(r)
    queue = outbox(None)
    t = Torture("flush", ob, ob, r, tmp_path)
    t.check_failure = one_line

    def once(env):
        toks = [t.token() for _ in range(3)]
        for tok, rcpt in zip(toks, ["bob@example.org", "carol@example.org",
                                    "gone@example.org"]):
            q = queue.run(["-odq", "-i", rcpt], input="Subject: %s\n\nx\n" % tok)
            assert q.returncode == 0, q.stderr
        res = ob.run(["-q"], env=env)
        # queued with exit 0 before the flush: the two deliverable ones
        return set(toks[:2]), res

    torture(t, once)


def test_bs_failure_with_a_client_that_stopped_reading_cleans_up(outbox, tmp_path):
    # Regression: the -bs die hook wrote its 421 with smtpd_flush(), which
    # exits 74 when the client has gone (SIGPIPE ignored, as callers may
    # leave it): log_die's cleanup never ran, and a failure during DATA
    # left the half-written message in tmp/ with the wrong exit status.
    ob = outbox(None)
    counts = str(tmp_path / "counts")
    head = b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    body = b"Subject: gone\r\n\r\n" + b"a line of the body\r\n" * 2000 + b".\r\nQUIT\r\n"

    def feed(p, data):
        try:
            p.stdin.write(data)
        except BrokenPipeError:
            pass                            # it died before reading it all

    def session(n):
        if os.path.exists(counts):
            os.unlink(counts)
        p = subprocess.Popen(
            [ob.binary, "-C", ob.conf_path, "-bs"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
            restore_signals=False,
            env=ob.env({"OUTBOX_FAIL_ALLOC": str(n), "OUTBOX_ALLOC_COUNT": counts}),
            preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN))
        feed(p, head)
        out = b""
        while b"354 " not in out:
            chunk = p.stdout.read(4096)
            if not chunk:
                break
            out += chunk
        p.stdout.close()                    # the client stops listening
        feed(p, body)
        p.stdin.close()
        rc = p.wait(30)
        p.stderr.close()
        with open(counts) as f:
            hit = max(int(line) for line in f) >= n
        return rc, hit, b"354 " in out

    during_data = 0
    n = 0
    while True:
        n += 1
        rc, hit, in_data = session(n)
        assert rc >= 0
        tmp = os.path.join(ob.spool, "tmp")
        assert not os.path.isdir(tmp) or os.listdir(tmp) == [], "N=%d" % n
        if not hit:
            break                           # past the last allocation
        assert rc == 71, "N=%d: exit %d" % (n, rc)
        during_data += in_data
        for f in ob.queue_files():
            os.unlink(f)
    assert during_data > 0
