"""The spool's state machine (docs/spool.md), one crash per state.

outbox is killed with SIGKILL at each named point (test hook
OUTBOX_CRASH_AT); the test then checks what is on disk, runs the recovery
(a flush) and checks what the relay received.
"""
import os
import time

import pytest

MSG = b"Subject: crash\n\nbody\n"


def files(ob, sub):
    d = os.path.join(ob.spool, sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def age_tmp(ob):
    """Make tmp/ leftovers look old, as after a real crash long ago."""
    d = os.path.join(ob.spool, "tmp")
    old = time.time() - 60
    for f in os.listdir(d):
        os.utime(os.path.join(d, f), (old, old))


def crash(ob, point, args=("-i", "bob@example.org"), input=MSG):
    res = ob.run(list(args), input=input, env={"OUTBOX_CRASH_AT": point})
    assert res.returncode == -9, (point, res.returncode, res.stderr)
    return res


def recover(ob):
    age_tmp(ob)
    res = ob.run(["-q"])
    assert res.returncode == 0, res.stderr
    assert files(ob, "tmp") == []


def test_receiving_killed_mid_input(relay, outbox):
    import subprocess
    r = relay()
    ob = outbox(r)
    p = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-i", "bob@example.org"],
                         stdin=subprocess.PIPE, env=ob.env())
    p.stdin.write(b"Subject: x\n\n" + b"y" * 200000)
    p.stdin.flush()
    time.sleep(0.2)
    assert len(files(ob, "tmp")) == 1 and files(ob, "q") == []
    p.kill()
    p.wait()
    recover(ob)
    assert files(ob, "q") == [] and r.messages == []


def test_written_not_committed(relay, outbox):
    r = relay()
    ob = outbox(r)
    crash(ob, "before-commit")
    assert len(files(ob, "tmp")) == 1 and files(ob, "q") == []
    recover(ob)
    assert files(ob, "q") == [] and r.messages == []


def test_fresh_tmp_file_is_not_cleaned(relay, outbox):
    # a live writer between open() and flock() must never lose its file
    r = relay()
    ob = outbox(r)
    crash(ob, "before-commit")
    assert ob.run(["-q"]).returncode == 0
    assert len(files(ob, "tmp")) == 1


def test_linked_before_directory_fsync(relay, outbox):
    r = relay()
    ob = outbox(r)
    crash(ob, "before-dirsync")
    assert len(files(ob, "q")) == 1 and files(ob, "tmp") == files(ob, "q")
    recover(ob)
    assert len(r.wait_for(1)) == 1
    assert files(ob, "q") == []


def test_committed_before_delivery(relay, outbox):
    r = relay()
    ob = outbox(r)
    crash(ob, "after-commit")
    assert len(files(ob, "q")) == 1 and files(ob, "tmp") == []
    assert r.messages == []
    recover(ob)
    assert len(r.wait_for(1)) == 1
    assert files(ob, "q") == []


def test_relay_accepted_before_spool_update_is_the_duplicate_window(relay, outbox):
    r = relay()
    ob = outbox(r)
    crash(ob, "after-accept")
    assert len(r.wait_for(1)) == 1
    assert len(files(ob, "q")) == 1
    recover(ob)
    # documented in docs/spool.md: the one window that can duplicate
    assert len(r.wait_for(2)) == 2
    assert files(ob, "q") == []


def test_state_written_not_renamed(relay, outbox):
    r = relay(rcpt_rules={"bob@example.org": "451 4.2.0 later"})
    ob = outbox(r)
    crash(ob, "state-written")
    assert [f for f in files(ob, "q") if f.endswith(".st")] == []
    assert len(files(ob, "tmp")) == 1
    r.rcpt_rules.clear()
    recover(ob)
    assert len(r.wait_for(1)) == 1
    assert files(ob, "q") == []


def test_state_written_keeps_previous_state(relay, outbox):
    # a first attempt records bob as done; a crash while recording the
    # second attempt must not make bob pending again
    r = relay(rcpt_rules={"carol@example.org": "451 4.2.0 later"})
    ob = outbox(r)
    assert ob.run(["-i", "bob@example.org", "carol@example.org"], input=MSG).returncode == 0
    assert r.wait_for(1)[0]["rcpt_tos"] == ["bob@example.org"]
    crash(ob, "state-written", args=["-q"], input=None)
    r.rcpt_rules.clear()
    recover(ob)
    rcpts = [m["rcpt_tos"] for m in r.wait_for(2)]
    assert rcpts == [["bob@example.org"], ["carol@example.org"]] or \
        rcpts[1:] == [["carol@example.org"]]
    assert sum(x.count("bob@example.org") for x in rcpts) == 1
    assert files(ob, "q") == []


def test_unlinked_message_leaves_orphan_state_that_is_cleaned(relay, outbox):
    r = relay(rcpt_rules={"carol@example.org": "451 4.2.0 later"})
    ob = outbox(r)
    ob.run(["-i", "bob@example.org", "carol@example.org"], input=MSG)
    r.rcpt_rules.clear()
    crash(ob, "after-unlink", args=["-q"], input=None)
    assert [f for f in files(ob, "q")] and all(f.endswith(".st") for f in files(ob, "q"))
    recover(ob)
    assert files(ob, "q") == []
    assert len(r.messages) == 2     # bob once, then carol once: nothing resent


def test_corrupt_queue_file_is_left_alone_and_reported(relay, outbox):
    r = relay()
    ob = outbox(r)
    ob.run(["-odq", "-i", "bob@example.org"], input=MSG)
    path = os.path.join(ob.spool, "q", files(ob, "q")[0])
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    res = ob.run(["-q"])
    assert b"corrupt queue file" in res.stderr
    assert r.messages == [] and os.path.exists(path)
    assert b"corrupt" in ob.mailq().stdout


@pytest.mark.parametrize("bad", ["symlink", "mode"])
def test_unsafe_spool_directory_is_refused(relay, outbox, tmp_path, bad):
    r = relay()
    ob = outbox(r)
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    if bad == "symlink":
        os.symlink(target, ob.spool)
    else:
        os.mkdir(ob.spool, 0o755)
        os.chmod(ob.spool, 0o755)
    res = ob.run(["-i", "bob@example.org"], input=MSG)
    assert res.returncode == 73
    assert b"spool" in res.stderr
    assert os.listdir(target) == [] and r.messages == []


def test_per_user_directory_under_the_shared_base(relay, outbox, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    os.chmod(base, 0o1733)
    r = relay()
    ob = outbox(r, queue={"dir": None})
    res = ob.run(["-odq", "-i", "bob@example.org"], input=MSG,
                 env={"OUTBOX_SPOOL_BASE": str(base)})
    assert res.returncode == 0, res.stderr
    mine = base / str(os.getuid())
    assert os.stat(mine).st_mode & 0o777 == 0o700
    assert len(os.listdir(mine / "q")) == 1


def test_symlink_in_the_shared_base_is_refused(relay, outbox, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    target = tmp_path / "victim"
    target.mkdir(mode=0o700)
    os.symlink(target, base / str(os.getuid()))
    ob = outbox(relay(), queue={"dir": None})
    res = ob.run(["-i", "bob@example.org"], input=MSG,
                 env={"OUTBOX_SPOOL_BASE": str(base)})
    assert res.returncode == 73
    assert os.listdir(target) == []


def test_xdg_state_home_spool_without_base(relay, outbox, tmp_path):
    ob = outbox(relay(), queue={"dir": None})
    state = tmp_path / "state"
    res = ob.run(["-odq", "-i", "bob@example.org"], input=MSG,
                 env={"OUTBOX_SPOOL_BASE": str(tmp_path / "nonexistent"),
                      "XDG_STATE_HOME": str(state)})
    assert res.returncode == 0, res.stderr
    assert len(os.listdir(state / "outbox" / "q")) == 1


def test_home_unset_falls_back_to_passwd(relay, outbox, tmp_path):
    # PHP-FPM runs sendmail with an empty environment
    import pwd
    ob = outbox(relay(), queue={"dir": None})
    res = ob.run(["-v", "-odq", "-i", "bob@example.org"], input=MSG,
                 env={"HOME": None, "XDG_STATE_HOME": None,
                      "OUTBOX_SPOOL_BASE": str(tmp_path / "nonexistent")})
    assert res.returncode == 0, res.stderr
    spool = os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".local/state/outbox")
    try:
        assert ("queued in %s (-odq)" % spool).encode() in res.stderr
        qid = res.stderr.split(b": queued in")[0].split()[-1].decode()
        assert os.path.exists(os.path.join(spool, "q", qid))
    finally:
        for f in os.listdir(os.path.join(spool, "q")):
            if f.startswith(qid):
                os.unlink(os.path.join(spool, "q", f))


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to switch to nobody")
def test_non_root_user_gets_a_private_directory_in_the_1733_base(tmp_path):
    # the base is searchable but not readable by users: outbox must not
    # need to read it (the bug: it fell back to ~/.local/state)
    import subprocess
    import tempfile
    from conftest import SENDMAIL
    top = tempfile.mkdtemp(prefix="outbox-base-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        base = os.path.join(top, "spool")
        os.mkdir(base)
        os.chmod(base, 0o1733)
        conf = os.path.join(top, "c.conf")
        with open(conf, "w") as f:
            f.write("[mail]\ndomain = example.com\n")
        os.chmod(conf, 0o644)
        res = subprocess.run(
            [SENDMAIL, "-C", conf, "-odq", "-i", "bob@example.org"], input=MSG,
            capture_output=True, preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)),
            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
                 "OUTBOX_SPOOL_BASE": base})
        assert res.returncode == 0, res.stderr
        mine = os.path.join(base, "65534")
        st = os.stat(mine)
        assert (st.st_uid, st.st_mode & 0o777) == (65534, 0o700)
        assert len(os.listdir(os.path.join(mine, "q"))) == 1
    finally:
        import shutil
        shutil.rmtree(top)
