"""Faults: random SIGKILLs across submission, flush and state updates;
a full disk; many submitters and flushers against a flapping relay.

Figures (kills, lost, duplicates) are printed; run with -s to see them.
"""
import json
import os
import random
import subprocess
import threading
import time

import pytest


def age_tmp(ob):
    d = os.path.join(ob.spool, "tmp")
    if os.path.isdir(d):
        old = time.time() - 60
        for f in os.listdir(d):
            # A background flush may remove a file between the listing
            # and the touch: that is the flush working, not a fault.
            try:
                os.utime(os.path.join(d, f), (old, old))
            except FileNotFoundError:
                pass


def drain(ob, rounds=10):
    """Final recovery: flush until nothing is pending (or give up)."""
    for _ in range(rounds):
        age_tmp(ob)
        ob.run(["-q"], timeout=120)
        q = json.loads(ob.run(["-bp", "--json"]).stdout)
        if not any(r["state"] == "pending" for m in q for r in m["recipients"]):
            return q
    return q


def received(r):
    """(token, recipient) -> times received, from the Subject lines."""
    seen = {}
    for m in r.messages:
        subj = [l for l in m["data"].split(b"\r\n") if l.startswith(b"Subject: ")][0]
        token = subj.split()[1].decode()
        for rcpt in m["rcpt_tos"]:
            seen[(token, rcpt)] = seen.get((token, rcpt), 0) + 1
    return seen


def test_random_kills_lose_nothing(relay, outbox):
    rng = random.Random(20261128)
    r = relay(rcpt_rules={"later@example.org": "451 4.3.0 not now"})
    ob = outbox(r, queue={"retry_min": "1s", "retry_max": "1s"})
    accepted, wanted = set(), {}
    kills = {"submit": 0, "flush": 0}
    rounds = 0
    while kills["submit"] + kills["flush"] < 200:
        rounds += 1
        kind = "flush" if rng.random() < 0.3 else "submit"
        token = "T%04d" % rounds
        rcpts = ["bob@example.org"] + (["later@example.org"] if rng.random() < 0.3 else [])
        args = ["-q"] if kind == "flush" else ["-i"] + rcpts
        body = b"x" * rng.choice([10, 5000, 300000])
        p = subprocess.Popen([ob.binary, "-C", ob.conf_path] + args, env=ob.env(),
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            if kind == "submit":
                p.stdin.write(b"Subject: " + token.encode() + b"\n\n" + body + b"\n")
            p.stdin.close()
        except BrokenPipeError:
            pass
        time.sleep(rng.uniform(0, 0.03))
        if p.poll() is None:
            p.kill()
            kills[kind] += 1
        rc = p.wait()
        if kind == "submit" and rc == 0:
            accepted.add(token)
            wanted[token] = rcpts
    r.rcpt_rules.clear()
    left = drain(ob)
    seen = received(r)
    lost = [(t, x) for t in accepted for x in wanted[t] if (t, x) not in seen]
    dups = sum(n - 1 for n in seen.values())
    print("\ncrash injection: %d rounds, %d kills (%d submit, %d flush), "
          "%d accepted, %d lost, %d duplicates, %d left in queue"
          % (rounds, sum(kills.values()), kills["submit"], kills["flush"],
             len(accepted), len(lost), dups, len(left)))
    assert lost == []
    # a duplicate needs a kill between the relay's 250 and the unlink
    assert dups <= sum(kills.values())
    assert all(n >= 1 for n in seen.values())
    assert left == []


@pytest.fixture
def small_fs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(d)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield str(d)
    subprocess.run(["umount", "-l", str(d)])


def test_disk_full_submission_exits_73_and_leaves_nothing(relay, outbox, small_fs):
    r = relay()
    spool = os.path.join(small_fs, "spool")
    ob = outbox(r, queue={"dir": spool})
    res = ob.run(["-i", "bob@example.org"], input=b"Subject: big\n\n" + b"y" * 400000 + b"\n")
    assert res.returncode == 73
    assert res.stderr == b"sendmail: cannot write to the spool %s: No space left on device; " \
        b"the message was not accepted\n" % spool.encode()
    for sub in ("q", "tmp"):
        assert os.listdir(os.path.join(spool, sub)) == []
    assert r.messages == []
    # the disk has room again: a small message goes through
    assert ob.run(["-i", "bob@example.org"], input=b"Subject: s\n\nx\n").returncode == 0
    assert len(r.wait_for(1)) == 1


def test_disk_full_during_flush_keeps_the_queue_consistent(relay, outbox, small_fs):
    r = relay(rcpt_rules={"bob@example.org": "451 4.3.0 later"})
    q = os.path.join(small_fs, "spool", "q")
    ob = outbox(r, queue={"dir": os.path.join(small_fs, "spool")})
    assert ob.run(["-i", "bob@example.org"], input=b"Subject: s\n\nx\n").returncode == 0
    before = {f: open(os.path.join(q, f), "rb").read() for f in os.listdir(q)}
    filler = os.path.join(small_fs, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    os.close(fd)
    res = ob.run(["-q"])                       # cannot write the new state
    assert res.returncode == 75
    assert b"cannot save delivery state" in res.stderr
    after = {f: open(os.path.join(q, f), "rb").read() for f in os.listdir(q)}
    assert after == before                     # the old state stands whole
    assert os.listdir(os.path.join(small_fs, "spool", "tmp")) == []
    os.unlink(filler)
    r.rcpt_rules.clear()
    assert ob.run(["-q"]).returncode == 0
    assert len(r.wait_for(1)) == 1 and os.listdir(q) == []


def test_many_submitters_flushers_and_a_flapping_relay(relay, outbox):
    r = relay()
    ob = outbox(r, queue={"retry_min": "1s", "retry_max": "1s"})
    n_submitters, per = 8, 100
    stop = threading.Event()
    errors = []

    def flap():
        while not stop.is_set():
            r.rcpt_rules["*"] = "451 4.3.0 flapping"
            time.sleep(0.15)
            r.rcpt_rules.clear()
            time.sleep(0.15)

    def submitter(k):
        for i in range(per):
            res = ob.run(["-i", "bob@example.org"],
                         input=b"Subject: S%d-%03d\n\nx\n" % (k, i))
            if res.returncode != 0:
                errors.append(res)

    def flusher():
        while not stop.is_set():
            ob.run(["-q"])

    runner = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-q1s"], env=ob.env(),
                              stderr=subprocess.DEVNULL)
    threads = [threading.Thread(target=flap)] + \
        [threading.Thread(target=flusher) for _ in range(2)]
    subs = [threading.Thread(target=submitter, args=(k,)) for k in range(n_submitters)]
    for t in threads + subs:
        t.start()
    for t in subs:
        t.join()
    stop.set()
    for t in threads:
        t.join()
    r.rcpt_rules.clear()
    runner.terminate()
    assert runner.wait(30) == 0
    drain(ob)
    seen = received(r)
    want = {("S%d-%03d" % (k, i), "bob@example.org")
            for k in range(n_submitters) for i in range(per)}
    print("\nconcurrency: %d messages, %d received, %d duplicates, %d errors"
          % (len(want), len(seen), sum(n - 1 for n in seen.values()), len(errors)))
    assert errors == []
    assert set(seen) == want
    assert all(n == 1 for n in seen.values()), "every message exactly once"
