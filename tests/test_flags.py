"""Every command-line flag, one row each: argv, exit status, and what it
changes in what the relay receives (or in the queue).

Rows name the flag they pin; the effect is checked on the recorded
envelope, options and data, so a flag that is silently ignored where it
should act fails its row.
"""
import os
import signal
import subprocess
import time

import pytest

RCPT = "bob@example.org"
MSG = b"Subject: flags\n\nbody\n.\nafter dot\n"


def head(m):
    return m["data"].split(b"\r\n\r\n", 1)[0]


def body(m):
    return m["data"].split(b"\r\n\r\n", 1)[1]


def queued_head(ob):
    qf = [f for f in ob.queue_files() if not f.endswith(".st")][0]
    return open(qf, "rb").read().split(b"\n\n", 1)[0].decode()


# (id, argv before the recipient, check(message)) -- delivered, exit 0
DELIVERED = [
    ("no flags: lone dot ends input", [], lambda m: body(m) == b"body\r\n"),
    ("-i", ["-i"], lambda m: body(m).endswith(b"after dot\r\n")),
    ("-oi", ["-oi"], lambda m: body(m).endswith(b"after dot\r\n")),
    ("-ti clustered", ["-ti"], lambda m: body(m).endswith(b"after dot\r\n")),
    ("-f glued", ["-fs@example.org"], lambda m: m["mail_from"] == "s@example.org"),
    ("-f separate", ["-f", "s@example.org"], lambda m: m["mail_from"] == "s@example.org"),
    ("-f <>", ["-f", "<>"], lambda m: m["mail_from"] == ""),
    ("-r glued", ["-rs@example.org"], lambda m: m["mail_from"] == "s@example.org"),
    ("-r separate", ["-r", "s@example.org"], lambda m: m["mail_from"] == "s@example.org"),
    ("-F glued", ["-FJo Doe"], lambda m: b"From: Jo Doe <app@example.com>" in head(m)),
    ("-F separate", ["-F", "Jo Doe"], lambda m: b"From: Jo Doe <app@example.com>" in head(m)),
    ("-B8BITMIME glued", ["-B8BITMIME"], lambda m: "BODY=8BITMIME" in m["mail_options"]),
    ("-B 8BITMIME separate", ["-B", "8BITMIME"],
     lambda m: "BODY=8BITMIME" in m["mail_options"]),
    ("-B 7BIT", ["-B", "7BIT"], lambda m: "BODY=8BITMIME" not in m["mail_options"]),
    ("-v", ["-v"], lambda m: True),
    ("-bm", ["-bm"], lambda m: m["rcpt_tos"] == [RCPT]),
    ("-odb", ["-odb"], lambda m: m["rcpt_tos"] == [RCPT]),
    ("-odi", ["-odi"], lambda m: m["rcpt_tos"] == [RCPT]),
    ("-oem", ["-oem"], lambda m: True),
    ("-oep", ["-oep"], lambda m: True),
    ("-oQ ignored", ["-oQ/tmp"], lambda m: True),
    ("-O ignored", ["-O", "DeliveryMode=b"], lambda m: True),
    ("-G ignored", ["-G"], lambda m: True),
    ("-L ignored", ["-L", "tag"], lambda m: True),
    ("-U ignored", ["-U"], lambda m: True),
    ("-X ignored", ["-X", "/dev/null"], lambda m: True),
    ("-h ignored", ["-h", "10"], lambda m: True),
    ("-n ignored", ["-n"], lambda m: True),
    ("-m ignored", ["-m"], lambda m: True),
    ("-A ignored", ["-A", "m"], lambda m: True),
    ("-- ends options", ["--"], lambda m: m["rcpt_tos"] == [RCPT]),
]


@pytest.mark.parametrize("name,argv,check", DELIVERED, ids=[r[0] for r in DELIVERED])
def test_flag_delivered(relay, outbox, name, argv, check):
    r = relay()
    ob = outbox(r)
    res = ob.run(argv + [RCPT], input=MSG)
    assert res.returncode == 0, res.stderr
    if "-v" not in argv:
        assert res.stderr == b""
    m = r.wait_for(1)[0]
    assert m["rcpt_tos"] == [RCPT] and check(m), m


def test_flag_t_reads_recipients(relay, outbox):
    r = relay()
    ob = outbox(r)
    assert ob.run(["-t", "-i"], input=b"To: t@example.org\n\nx\n").returncode == 0
    assert r.wait_for(1)[0]["rcpt_tos"] == ["t@example.org"]


def test_flag_C_selects_the_file(relay, outbox, tmp_path):
    r = relay()
    ob = outbox(r)
    res = ob.run(["-C", ob.conf_path, "-i", RCPT], input=MSG, use_conf=False)
    assert res.returncode == 0 and len(r.wait_for(1)) == 1


# (id, argv, what the queue file header must contain) -- stored, not sent
STORED = [
    ("-N never", ["-N", "never"], "rcpt %s NOTIFY=NEVER" % RCPT),
    ("-N list", ["-N", "success,failure,delay"],
     "rcpt %s NOTIFY=SUCCESS,FAILURE,DELAY" % RCPT),
    ("-Nfailure glued", ["-Nfailure"], "rcpt %s NOTIFY=FAILURE" % RCPT),
    ("-R full", ["-R", "full"], "dsn RET=FULL"),
    ("-Rhdrs glued", ["-Rhdrs"], "dsn RET=HDRS"),
    ("-V envid", ["-V", "id+1=x"], "dsn ENVID=id+2B1+3Dx"),
    ("-R and -V", ["-R", "hdrs", "-V", "abc"], "dsn RET=HDRS ENVID=abc"),
    ("-B8BITMIME", ["-B8BITMIME"], "body 8BITMIME"),
    ("-odq", ["-odq"], "rcpt %s" % RCPT),
]


@pytest.mark.parametrize("name,argv,line", STORED, ids=[r[0] for r in STORED])
def test_flag_stored_with_the_message(relay, outbox, name, argv, line):
    r = relay()
    ob = outbox(r, relay={"port": 1})        # down: the message stays queued
    res = ob.run(argv + ["-i", RCPT], input=MSG)
    assert res.returncode == 0, res.stderr
    assert line in queued_head(ob).splitlines()


# (id, argv, exit status) -- refused before anything is queued
REFUSED = [
    ("unknown flag", ["-Z"], 64),
    ("unknown flag in a cluster", ["-tiZ"], 64),
    ("-B bad", ["-B", "9BIT"], 64),
    ("-N bad", ["-N", "sometimes"], 64),
    ("-N empty list", ["-N", ","], 64),
    ("-R bad", ["-R", "most"], 64),
    ("-V too long", ["-V", "x" * 101], 64),
    ("-f missing value", ["-f"], 64),
    ("-b unknown mode", ["-bt"], 64),
    ("-q bad", ["-qX"], 64),
    ("-q bad unit", ["-q5y"], 64),
    ("-q with an argument", ["-q", "30m"], 64),
    ("-C missing file", ["-C", "/nonexistent/outbox.conf"], 78),
]


@pytest.mark.parametrize("name,argv,code", REFUSED, ids=[r[0] for r in REFUSED])
def test_flag_refused(relay, outbox, name, argv, code):
    r = relay()
    ob = outbox(r)
    res = ob.run(argv + [RCPT], input=MSG)
    assert res.returncode == code
    assert res.stderr.startswith(b"sendmail: ") and res.stderr.count(b"\n") == 1
    assert ob.queue_files() == [] and r.connections == 0


def test_flag_bp_lists(outbox):
    ob = outbox()
    ob.run(["-i", RCPT], input=MSG)
    res = ob.run(["-bp"])
    assert res.returncode == 0 and RCPT.encode() in res.stdout


def test_invoked_as_mailq_lists(outbox, tmp_path):
    ob = outbox()
    ob.run(["-i", RCPT], input=MSG)
    link = tmp_path / "mailq"
    os.symlink(ob.binary, link)
    res = subprocess.run([str(link), "-C", ob.conf_path], capture_output=True, env=ob.env())
    assert res.returncode == 0 and RCPT.encode() in res.stdout


def test_invoked_as_newaliases_succeeds_quietly(outbox, tmp_path):
    ob = outbox()
    link = tmp_path / "newaliases"
    os.symlink(ob.binary, link)
    res = subprocess.run([str(link)], capture_output=True, env=ob.env())
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")


@pytest.mark.parametrize("argv", [["-bi"], ["-I"]])
def test_flag_bi_succeeds_quietly(outbox, argv):
    res = outbox().run(argv)
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")


def test_flag_bv_verifies_without_sending(relay, outbox):
    r = relay()
    res = outbox(r).run(["-bv", RCPT])
    assert res.returncode == 0 and res.stdout.startswith(b"bob@example.org... deliverable")
    assert r.connections == 0


def test_flag_bs_speaks_smtp(relay, outbox):
    res = outbox(relay()).run(["-bs"], input=b"QUIT\r\n")
    assert res.stdout.startswith(b"220 ") and res.stdout.endswith(b"221 2.0.0 Bye\r\n")


def test_flag_q_flushes(relay, outbox):
    r = relay()
    ob = outbox(r)
    ob.run(["-odq", "-i", RCPT], input=MSG)
    assert r.connections == 0
    assert ob.run(["-q"]).returncode == 0 and len(r.wait_for(1)) == 1


def test_flag_qI_flushes_one(relay, outbox):
    r = relay()
    ob = outbox(r)
    ob.run(["-odq", "-i", RCPT], input=MSG)
    qid = os.path.basename(ob.queue_files()[0])
    assert ob.run(["-qI" + qid]).returncode == 0 and len(r.wait_for(1)) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_flag_q_interval_runs_in_foreground(relay, outbox, sig):
    r = relay()
    ob = outbox(r)
    p = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-q1m"], env=ob.env(),
                         stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        assert p.poll() is None
        start = time.time()
        ob.run(["-odq", "-i", RCPT], input=MSG)
        r.wait_for(1, timeout=5)
        picked_up = time.time() - start
        p.send_signal(sig)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
    assert picked_up < 1.0, "a new message wakes the runner (inotify)"
    assert b"queue runner stopped" in p.stderr.read()


def test_q_interval_finishes_the_transaction_on_sigterm(relay, outbox):
    r = relay(data_delay=1.0)
    ob = outbox(r)
    ob.run(["-odq", "-i", RCPT], input=MSG)
    p = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-q1h"], env=ob.env(),
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 5
        while not any(c.upper().startswith("DATA") for c in r.commands):
            assert time.time() < deadline, "the runner never reached DATA"
            time.sleep(0.02)
        time.sleep(0.2)                 # the message is on the wire
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
    assert len(r.messages) == 1
    assert ob.queue_files() == [], "the finished transaction was recorded"


def wait_until(pred, timeout=20):
    end = time.time() + timeout
    while not pred():
        assert time.time() < end, "timed out"
        time.sleep(0.02)


def test_odb_returns_at_once_and_delivers_in_the_background(relay, outbox):
    import threading
    gate = threading.Event()
    r = relay(on_message=lambda m: gate.wait(10))   # holds the final 250
    ob = outbox(r)
    res = ob.run(["-odb", "-i", RCPT], input=MSG)
    assert res.returncode == 0 and res.stderr == b""
    # sendmail has exited while the relay still withholds its 250: the
    # message is still queued, and the detached process delivers it
    assert not gate.is_set()
    assert len([f for f in ob.queue_files() if not f.endswith(".st")]) == 1
    gate.set()
    assert r.wait_for(1)[0]["rcpt_tos"] == [RCPT]
    wait_until(lambda: ob.queue_files() == [])


def test_odb_refusal_is_bounced_not_an_exit_status(relay, outbox):
    r = relay(rcpt_rules={RCPT: "550 5.1.1 no such user"})
    ob = outbox(r)
    res = ob.run(["-odb", "-i", RCPT], input=MSG)
    assert res.returncode == 0 and res.stderr == b""
    bounce = r.wait_for(1)[0]                   # the bounce, to the sender
    assert bounce["mail_from"] == "" and bounce["rcpt_tos"] == ["app@example.com"]
    assert b"550 5.1.1 no such user" in bounce["data"]
