#!/usr/bin/python3
"""nshost.py UPPER WORK: the bench's process host for dma, run under
`unshare -m --propagation private` by bench/dmapeer.py.

dma reads /etc/dma/dma.conf, a path compiled into it. In this private mount
namespace /etc is an overlay: the machine's /etc below, UPPER (in the
bench's temporary directory) above, so /etc/dma/dma.conf is the bench's
file while the machine's /etc is never written (WORK is overlayfs's work
directory, also in the temporary directory). The namespace ends with the
last process in it.

This process is also a child subreaper: dma forks a detached delivery
process per message (setsid, parent exits), and those are re-parented here,
so the bench can wait for them and kill whatever is left at the end. (Their
CPU time is counted by the cgroup this runs in, not by getrusage: dma's
queue runner ignores SIGCHLD, so its delivery processes are never waited
for; see cpugroup.py.) Commands are timed here, inside the
namespace, so that no namespace set-up is in any measured time.

Requests are JSON lines on stdin, each answered by one JSON line on stdout:

  {"op": "run", "argv": [...], "input": PATH|null}
      run once (stdin: the file's bytes through a pipe, as the bench feeds
      every other peer); -> {"t0": monotonic start, "dt": seconds to exit,
      "rc": exit status, "err": stderr tail}
  {"op": "runmany", "argv": [...], "input": PATH, "n": N, "jobs": J}
      run N times, J at once; -> {"failed": count, "err": last stderr}
  {"op": "idle", "timeout": S}
                   wait until no descendant is left (or S seconds);
                   -> {"live": how many are left}
  {"op": "quit"}   (or end of input) kill every descendant, reap, exit.
"""
import concurrent.futures
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36


def children():
    me, out = str(os.getpid()), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if st[1] == me:
            out.append(int(pid))
    return out


def reap(block=False):
    """Wait for what has exited (for everything if block); True while a
    child is left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def status():
    reap()
    return {"live": len(children())}


def run(argv, data):
    """Time to exit (waitpid), standard error to a file as in bench.timed():
    dma's detached delivery must not be timed through an inherited pipe."""
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        r = subprocess.run(argv, input=data, stdout=subprocess.DEVNULL, stderr=err)
        dt = time.monotonic() - t0
        err.seek(0)
        text = err.read()[-300:].decode(errors="replace")
    return {"t0": t0, "dt": dt, "rc": r.returncode, "err": text}


def kill_all():
    for _ in range(50):
        pids = children()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap(block=True)
    reap()


def main():
    upper, work = sys.argv[1], sys.argv[2]
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=/etc,upperdir=%s,workdir=%s" % (upper, work), "/etc"],
                   check=True)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    print(json.dumps({"ready": True}), flush=True)
    try:
        for line in sys.stdin:
            req = json.loads(line)
            op = req["op"]
            data = open(req["input"], "rb").read() if req.get("input") else b""
            if op == "run":
                out = run(req["argv"], data)
            elif op == "runmany":
                with concurrent.futures.ThreadPoolExecutor(req.get("jobs", 1)) as ex:
                    rs = list(ex.map(lambda _: run(req["argv"], data), range(req["n"])))
                bad = [r for r in rs if r["rc"] != 0]
                out = {"failed": len(bad), "err": bad[-1]["err"] if bad else ""}
            elif op == "idle":
                deadline = time.monotonic() + req.get("timeout", 60)
                while reap() and time.monotonic() < deadline:
                    time.sleep(0.01)
                out = status()
            elif op == "quit":
                break
            else:
                out = {"error": "unknown op " + op}
            print(json.dumps(out), flush=True)
    finally:
        kill_all()


if __name__ == "__main__":
    main()
