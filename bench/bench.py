#!/usr/bin/python3
"""make bench: outbox beside msmtp, dma and Postfix's sendmail, same relay,
one run, one table.

The relay is a real Postfix smtpd on loopback (STARTTLS, RSA-2048 test
certificate) that discards what it accepts (transport_maps =
static:discard), with its queue and log on tmpfs (/dev/shm) so that its
fsyncs do not make it the bottleneck; its CPU share is printed. The clients'
spools stay on disk (/tmp). Postfix's sendmail runs as its own instance
(own configuration directory, queue and master, every command given -c/-C)
relaying to that sink: it never becomes this machine's MTA. dma is unpacked
from its .deb, never installed, and runs in a private mount namespace (see
bench/dmapeer.py). Latency figures are medians over BENCH_RUNS runs with
their spread [min-max], the peers interleaved run by run; the ratios are
taken within this run. Client CPU and the relay's CPU come from one cgroup
per client and one for the relay (bench/cpugroup.py), so processes nobody
waits for are counted too. A queue is filled by BENCH_JOBS submitters at
once, one sendmail per message. Nothing here is asserted: `make check` has
no timing tests. Progress goes to stderr, the table to stdout at the end.
Everything it starts is stopped, and its temporary directories and cgroups
removed, on any exit (an error, Ctrl-C, SIGTERM).

Figures (issue 6): 1. submission latency (outbox default, -odb, -odq,
msmtp, Postfix, dma), exit and end to end; 2. flush of BENCH_FLUSH queued
messages (outbox -q, Postfix without and with TLS connection reuse, dma -q):
msg/s, connections, client CPU; 3. peak RSS, 1 KB to 1 GB, the message
streamed from a file; 4. mailq on an empty and a full queue, -bv;
5. growth: outbox's flush and mailq time per message from 1k to 100k queued.
The summary table at the top has the issue's columns.

Environment (defaults in brackets):
  BENCH_RUNS    runs per latency figure [21]
  BENCH_FLUSH   queue sizes for the flush figure, comma-separated [1000,10000]
  BENCH_GROWTH  queue sizes for the growth figure [1000,10000,100000]
  BENCH_MAILQ   queue size for "mailq on a full queue" [10000]
  BENCH_RSS_MB  message sizes in MB for peak RSS, besides 1 KB [50,1024]
  BENCH_DMA_FLUSH_MAX  largest queue dma -q is asked to flush [1000]: it
                forks one delivery process per queued message, all at once
  BENCH_JOBS    parallel submitters when filling a queue [2]
"""
import concurrent.futures
import json
import os
import math
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)
from certs import make_certs            # noqa: E402
import postfix as pf                    # noqa: E402
import dmapeer                          # noqa: E402
from cpugroup import CpuGroup           # noqa: E402

OUTBOX = os.path.join(ROOT, "sendmail")


def sizes(var, default):
    return sorted({int(x) for x in os.environ.get(var, default).split(",") if x.strip()})


RUNS = int(os.environ.get("BENCH_RUNS", "21"))
FLUSH_SIZES = sizes("BENCH_FLUSH", "1000,10000")
GROWTH_SIZES = sizes("BENCH_GROWTH", "1000,10000,100000")
MAILQ_N = int(os.environ.get("BENCH_MAILQ", "10000"))
RSS_MB = sizes("BENCH_RSS_MB", "50,1024")
DMA_FLUSH_MAX = int(os.environ.get("BENCH_DMA_FLUSH_MAX", "1000"))
JOBS = int(os.environ.get("BENCH_JOBS", "2"))
MSG_1K = b"Subject: bench\nTo: bob@example.org\n\n" + (b"x" * 70 + b"\n") * 13
SHM = "/dev/shm"


def progress(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def now():
    # CLOCK_MONOTONIC, the clock nshost.py stamps with too
    return time.monotonic()


class LogTail:
    """Counts of some byte strings in a growing log, read incrementally
    (whole lines only), so that polling a log of a million lines is cheap."""

    def __init__(self, path, patterns):
        self.f = open(path, "rb")
        self.buf = b""
        self.counts = dict.fromkeys(patterns, 0)

    def update(self):
        self.buf += self.f.read()
        end = self.buf.rfind(b"\n") + 1
        if end:
            chunk, self.buf = self.buf[:end], self.buf[end:]
            for p in self.counts:
                self.counts[p] += chunk.count(p)
        return self.counts


class Sink(pf.Postfix):
    """The relay: Postfix smtpd that accepts and discards, queue on tmpfs.
    Its CPU is its cgroup's: master and every service process."""

    def __init__(self, certs):
        super().__init__(certs)
        self.cg = CpuGroup("relay")
        if os.path.isdir(SHM):
            os.rmdir(self.base)         # Postfix() made it in /tmp
            self.base = tempfile.mkdtemp(prefix="outbox-bench-sink-", dir=SHM)
            os.chmod(self.base, 0o755)
            self.conf = os.path.join(self.base, "conf")
        self.on_tmpfs = self.base.startswith(SHM)

    def _configure(self):
        super()._configure()
        with open(os.path.join(self.conf, "main.cf"), "a") as f:
            f.write("transport_maps = static:discard\nsmtpd_tls_session_cache_database =\n"
                    # no pause per message when qmgr lags behind smtpd
                    "in_flow_delay = 0s\n"
                    "smtpd_client_connection_count_limit = 0\n"
                    "smtpd_client_connection_rate_limit = 0\n"
                    "smtpd_client_message_rate_limit = 0\n"
                    "default_process_limit = 200\n"
                    # 50 MB and 1 GB messages are accepted (and discarded)
                    "message_size_limit = 0\nmailbox_size_limit = 0\n"
                    "virtual_mailbox_limit = 0\n")

    def start(self):
        with self.cg.joined():
            super().start()
        self.tail = LogTail(os.path.join(self.base, "postfix.log"),
                            (b"status=sent", b" connect from ", b": client="))
        return self

    def sent(self):
        return self.tail.update()[b"status=sent"]

    def connections(self):
        return self.tail.update()[b" connect from "]

    def began(self):
        return self.tail.update()[b": client="]

    def cpu(self):
        return self.cg.usage()

    def stop(self):
        super().stop()
        self.cg.close()
        if hasattr(self, "tail"):
            self.tail.f.close()


def median_spread(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt_ms(m):
    return "%.1f [%.1f-%.1f]" % tuple(1000 * x for x in m)


def timed(cmd, data=b"", env=None):
    """Seconds until cmd exits (its waitpid), the message on stdin. Its
    standard error goes to a file, not a pipe: a client that forks (dma,
    outbox -odb) would otherwise be timed until its child let go of the
    pipe, which is not what a caller such as PHP's mail() waits for."""
    with tempfile.TemporaryFile() as err:
        t = now()
        r = subprocess.run(cmd, input=data, stdout=subprocess.DEVNULL,
                           stderr=err, env=env)
        dt = now() - t
        if r.returncode != 0:
            err.seek(0)
            raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd[:3]), r.returncode,
                                                    err.read()[-300:]))
    return dt


def submit_many(cmd, n, data=MSG_1K, what=""):
    """Run cmd n times (message on stdin), JOBS at once."""
    done = [0]
    step = max(1, n // 10)

    def one(_):
        timed(cmd, data)
        done[0] += 1
        if n >= 5000 and done[0] % step == 0:
            progress("%s: %d/%d submitted" % (what, done[0], n))

    ex = concurrent.futures.ThreadPoolExecutor(JOBS)
    try:
        list(ex.map(one, range(n)))
    finally:
        # on an error or a signal, the submissions not yet started are dropped
        ex.shutdown(wait=True, cancel_futures=True)


def peak_rss(cmd, path):
    """Peak RSS in MB of one run (the process and the children it waited
    for, e.g. Postfix's postdrop), from /usr/bin/time; the message is
    streamed from the file as stdin. A failing exit is shown."""
    with open(path, "rb") as f:
        r = subprocess.run(["/usr/bin/time", "-f", "%x %M"] + cmd, stdin=f,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rc, kb = r.stderr.decode(errors="replace").strip().splitlines()[-1].split()[-2:]
    return "%.1f" % (int(kb) / 1024) + ("" if rc == "0" else " (exit %s)" % rc)


def wait_until(pred, timeout=600, every=0.01):
    """Poll pred every 1 ms for the first 0.2 s, then every `every` s."""
    t = now()
    while not pred():
        el = now() - t
        if el > timeout:
            raise TimeoutError("bench: still waiting after %d s" % timeout)
        time.sleep(0.001 if el < 0.2 else every)


class Outbox:
    name = "outbox"
    connections = 4         # [relay] connections, outbox's default

    def __init__(self, work, sink, certs):
        self.cg = CpuGroup("outbox")
        self.dir = os.path.join(work, "outbox")
        os.mkdir(self.dir)
        self.conf = os.path.join(self.dir, "outbox.conf")
        self.spool = os.path.join(self.dir, "spool")
        with open(self.conf, "w") as f:
            f.write("[relay]\nhost = 127.0.0.1\nport = %d\nca_file = %s\n"
                    "[mail]\nfrom = bench@example.com\ndomain = example.com\n"
                    "[queue]\ndir = %s\n" % (sink.port, certs["ca"], self.spool))
        os.chmod(self.conf, 0o600)

    def cmd(self, *args):
        return [OUTBOX, "-C", self.conf] + list(args)

    def send(self, *flags):
        return self.cmd(*flags, "-i", "bob@example.org")

    def queued(self):
        r = subprocess.run(self.cmd("-bp", "--json"), capture_output=True)
        try:
            return len(json.loads(r.stdout))
        except ValueError:
            return -1


class Msmtp:
    name = "msmtp"

    def __init__(self, work, sink, certs):
        self.conf = os.path.join(work, "msmtprc")
        with open(self.conf, "w") as f:
            f.write("defaults\ntls on\ntls_starttls on\ntls_trust_file %s\n"
                    "account default\nhost 127.0.0.1\nport %d\nfrom bench@example.com\n"
                    % (certs["ca"], sink.port))
        os.chmod(self.conf, 0o600)

    def send(self):
        return ["msmtp", "-C", self.conf, "-i", "bob@example.org"]


class PostfixClient(pf.Postfix):
    """Postfix's sendmail, its own instance, relaying to the sink.

    tlsproxy is enabled in its master.cf (Debian's ships it commented out),
    as smtp_tls_connection_reuse needs it; reuse itself is off unless a
    flush turns it on (set()). The client TLS session cache is left off,
    Postfix's own default: with Debian's stock one
    (smtp_tls_session_cache_database = btree:...) the resumed handshakes
    each stalled ~40 ms here (60 ms end to end instead of 16). Its CPU is its cgroup's: master and every service
    process (qmgr, smtp, tlsproxy, scache, tlsmgr, pickup, cleanup,
    trivial-rewrite, bounce, flush, ...), and postqueue when run in it."""
    name = "postfix"

    def __init__(self, certs, sink):
        super().__init__(certs)
        self.sink = sink
        self.cg = CpuGroup("postfix")

    def start(self):
        with self.cg.joined():
            return super().start()

    def stop(self):
        super().stop()
        self.cg.close()

    def _configure(self):
        super()._configure()
        subprocess.run(["postconf", "-c", self.conf, "-e",
                        "relayhost = [127.0.0.1]:%d" % self.sink.port,
                        "smtp_tls_security_level = encrypt",
                        "smtp_tls_CAfile = " + self.certs["ca"],
                        "smtp_tls_connection_reuse = no",
                        "virtual_mailbox_domains =",
                        "default_destination_concurrency_limit = 20",
                        "message_size_limit = 0", "mailbox_size_limit = 0",
                        "virtual_mailbox_limit = 0"], check=True)
        subprocess.run(["postconf", "-c", self.conf, "-M",
                        "tlsproxy/unix=tlsproxy unix - - n - 0 tlsproxy"], check=True)

    def send(self):
        return ["/usr/sbin/sendmail", "-C", self.conf, "-i", "bob@example.org"]

    def postfix(self, *args):
        subprocess.run(["postfix", "-c", self.conf] + list(args),
                       check=True, capture_output=True)

    def set(self, **kv):
        """postconf -e, then reload, and give the services a moment to restart."""
        subprocess.run(["postconf", "-c", self.conf, "-e"] +
                       ["%s = %s" % kv_ for kv_ in kv.items()], check=True)
        self.postfix("reload")
        time.sleep(1)

    def halt(self):
        self.postfix("stop")
        self.proc.wait(30)
        self.proc = None

    def resume(self):
        self.log = open(os.path.join(self.base, "postfix.log"), "a")
        with self.cg.joined():
            self.proc = subprocess.Popen(["postfix", "-c", self.conf, "start-fg"],
                                         stdout=self.log, stderr=subprocess.STDOUT)
        def up():
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, 30, 0.1)

    def queued(self, dirs=("incoming", "active", "deferred", "maildrop")):
        q = os.path.join(self.base, "queue")
        return sum(len(files) for d in dirs for _, _, files in os.walk(os.path.join(q, d)))

    def cpu(self):
        return self.cg.usage()


def fig_latency(peers, sink):
    """peers: (label, run, delivers); run() -> (t0, seconds to exit). Runs
    are interleaved (peer after peer, RUNS rounds) after one warm-up each.
    End to end: until the relay logged the message as delivered. Delivered
    by exit: the relay had logged the client's MAIL FROM (smtpd's
    "client=" line) by the time the submission exited (1 ms of grace for
    the log), i.e. the SMTP transaction ran in the foreground, not in a
    background process or a daemon. Returns {label: (exit, e2e or None,
    runs delivered by exit)}."""
    xs = {p[0]: [] for p in peers}
    e2e = {p[0]: [] for p in peers}
    by_exit = dict.fromkeys(xs, 0)
    for rnd in range(RUNS + 1):
        for label, run, delivers in peers:
            before, began = sink.sent(), sink.began()
            t0, dt = run()
            if sink.began() == began:
                time.sleep(0.001)
            if rnd and sink.began() > began:
                by_exit[label] += 1
            if delivers:
                wait_until(lambda: sink.sent() > before, 30)
                if rnd:
                    e2e[label].append(now() - t0)
            if rnd:
                xs[label].append(dt)
    return {label: (median_spread(xs[label]),
                    median_spread(e2e[label]) if e2e[label] else None, by_exit[label])
            for label, _, _ in peers}


def local(cmd):
    def run():
        t0 = now()
        return t0, timed(cmd, MSG_1K)
    return run


def outbox_cycle(ob, sink, n, mailq_reps):
    """Queue n messages with -odq (outbox's queue must be empty), time
    mailq on them, then flush with one sendmail -q: seconds until the relay
    has them all, connections, client CPU (outbox's cgroup: sendmail -q and
    every process it started, until the last exited), relay CPU share."""
    progress("outbox: queuing %d" % n)
    submit_many(ob.send("-odq"), n, what="outbox -odq")
    got = ob.queued()
    mq = median_spread([timed(ob.cmd("-bp")) for _ in range(mailq_reps)]) if mailq_reps else None
    progress("outbox: flushing %d" % n)
    before, conns, scpu, cpu0 = sink.sent(), sink.connections(), sink.cpu(), ob.cg.usage()
    t0 = now()
    with ob.cg.joined():
        p = subprocess.Popen(ob.cmd("-q"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: sink.sent() >= before + n, 120 + n * 0.05)
    t_end, sink_cpu = now(), sink.cpu() - scpu
    err = p.communicate()[1]
    if p.returncode != 0:
        raise RuntimeError("outbox -q: exit %d: %s" % (p.returncode, err[-300:]))
    wait_until(lambda: not ob.cg.procs(), 60)
    cpu = ob.cg.usage() - cpu0
    dt = t_end - t0
    return {"n": n, "queued": got, "mailq": mq, "dt": dt, "rate": n / dt,
            "conns": sink.connections() - conns, "cpu": cpu,
            "sink": sink_cpu / dt, "left": ob.queued()}


def postfix_flush(pc, sink, n, reuse):
    """Postfix: n messages queued "while the relay is down" (defer_transports
    = smtp: submitted with its sendmail, picked up, cleaned up and deferred,
    the relay never contacted), then defer_transports emptied, reload, and
    postqueue -f. Time: until the relay has them all. Client CPU: the
    instance's cgroup, from just before postqueue -f (run in it) to the
    moment its queue is empty."""
    progress("postfix: queuing %d (reuse %s)" % (n, reuse))
    pc.set(defer_transports="smtp")
    submit_many(pc.send(), n, what="postfix sendmail")
    wait_until(lambda: pc.queued(("deferred",)) >= n and
               pc.queued(("incoming", "active", "maildrop")) == 0, 120 + n * 0.05, 0.2)
    pc.set(defer_transports="", smtp_tls_connection_reuse="yes" if reuse else "no")
    progress("postfix: flushing %d" % n)
    before, conns, scpu, ccpu = sink.sent(), sink.connections(), sink.cpu(), pc.cpu()
    t0 = now()
    with pc.cg.joined():
        p = subprocess.Popen(["postqueue", "-c", pc.conf, "-f"])
    if p.wait() != 0:
        raise RuntimeError("postqueue -f: exit %d" % p.returncode)
    wait_until(lambda: sink.sent() >= before + n, 120 + n * 0.05)
    t_end, sink_cpu = now(), sink.cpu() - scpu
    wait_until(lambda: pc.queued() == 0, 60)
    cpu = pc.cpu() - ccpu
    dt = t_end - t0
    return {"n": n, "dt": dt, "rate": n / dt, "conns": sink.connections() - conns,
            "cpu": cpu, "sink": sink_cpu / dt}


def dma_flush(dma, sink, n):
    """dma: n messages queued with dma -bq, then dma -q (which forks one
    delivery process per message and exits). Time: until the relay has them
    all. Client CPU: dma's cgroup (dma -q, the queue runner it forks and
    every delivery process, until the last exited; getrusage would miss the
    deliveries, see bench/cpugroup.py)."""
    progress("dma: queuing %d" % n)
    dma.queue(n, MSG_1K, JOBS)
    progress("dma: flushing %d" % n)
    dma.idle(30)
    cpu0 = dma.cg.usage()
    before, conns, scpu = sink.sent(), sink.connections(), sink.cpu()
    t0, _ = dma.run([dma.bin, "-q"])
    wait_until(lambda: sink.sent() >= before + n, 120 + n * 0.05)
    t_end, sink_cpu = now(), sink.cpu() - scpu
    left = dma.idle(120)
    cpu = dma.cg.usage() - cpu0
    dt = t_end - t0
    return {"n": n, "dt": dt, "rate": n / dt, "conns": sink.connections() - conns,
            "cpu": cpu, "sink": sink_cpu / dt, "left": left}


def write_big(path, mb):
    line = b"y" * 76 + b"\n"
    block = line * (1024 * 1024 // len(line))
    with open(path, "wb") as f:
        f.write(b"Subject: big\nTo: bob@example.org\n\n")
        for _ in range(mb * 1024 * 1024 // len(block)):
            f.write(block)


def flush_line(label, r, configured=None):
    cpu = ("CPU %6.2f s = %.3f ms/msg" % (r["cpu"], 1000 * r["cpu"] / r["n"])
           if not math.isnan(r["cpu"]) else "CPU n/a (no cgroup)")
    relay = "relay %3.0f%%" % (100 * r["sink"]) if not math.isnan(r["sink"]) else ""
    return ("%-26s %8.0f msg/s %6.2f s  %5d conn%s  %s  %s"
            % (label, r["rate"], r["dt"], r["conns"],
               " (max %d)" % configured if configured else "         ", cpu, relay))


def main():
    if not pf.available():
        sys.exit("bench: needs root, postfix and msmtp (./install.sh installs them)")
    t_start = now()
    # SIGTERM/SIGHUP unwind through the finally below like Ctrl-C does
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    work = tempfile.mkdtemp(prefix="outbox-bench-", dir="/tmp")
    os.chmod(work, 0o755)
    sink = pfc = dma = ob = None
    try:
        certs = make_certs(os.path.join(work, "certs"))
        for k in certs:
            if isinstance(certs[k], str) and os.path.isfile(certs[k]):
                os.chmod(certs[k], 0o644)
        sink = Sink(certs)
        sink.start()
        pfc = PostfixClient(certs, sink)
        pfc.start()
        ob, ms = Outbox(work, sink, certs), Msmtp(work, sink, certs)
        try:
            dma = dmapeer.Dma(work, sink, certs)
            dma_why = None
        except (dmapeer.Unavailable, OSError, subprocess.CalledProcessError) as e:
            dma, dma_why = None, str(e)
        if dma:
            # one message first: a dma that cannot reach the relay gets a
            # row saying so instead of stopping the bench
            before = sink.sent()
            try:
                dma.run(dma.send(), MSG_1K)
                wait_until(lambda: sink.sent() > before, 15)
            except (RuntimeError, TimeoutError) as e:
                dma.close()
                dma, dma_why = None, "its first message did not reach the relay (%s)" % (
                    str(e) or "15 s")
        out = run(work, sink, pfc, ob, ms, dma, dma_why)
        out.append("\nwall time %.0f s" % (now() - t_start))
        print("\n".join(out))
    finally:
        if dma:
            dma.close()
        if ob:
            ob.cg.close()
        if pfc:
            pfc.stop()
        if sink:
            sink.stop()
        shutil.rmtree(work, ignore_errors=True)


OB, ODB, ODQ, MS, PF, DMA = ("outbox (delivered on exit)", "outbox -odb", "outbox -odq",
                              "msmtp", "postfix sendmail", "dma")


def run(work, sink, pfc, ob, ms, dma, dma_why):
    # 1. submission latency
    progress("latency, %d runs" % RUNS)
    peers = [(OB, local(ob.send()), True), (ODB, local(ob.send("-odb")), True),
             (MS, local(ms.send()), True), (PF, local(pfc.send()), True)]
    if dma:
        peers.append((DMA, lambda: dma.run(dma.send(), MSG_1K), True))
    lat = fig_latency(peers, sink)
    # -odq on its own: what it queues must not be taken for another peer's
    # delivery (a later outbox run may flush it)
    lat.update(fig_latency([(ODQ, local(ob.send("-odq")), False)], sink))
    before = sink.sent()
    timed(ob.cmd("-q"))
    wait_until(lambda: sink.sent() >= before + RUNS + 1, 60)

    # 4. cheap commands, on an empty queue
    progress("cheap commands")
    mq_empty = median_spread([timed(ob.cmd("-bp")) for _ in range(RUNS)])
    bv = median_spread([timed(ob.cmd("-bv", "bob@example.org")) for _ in range(RUNS)])

    # outbox: one queue-and-flush cycle per size serves the flush, growth
    # and mailq figures
    cyc = {}
    for n in sorted(set(FLUSH_SIZES) | set(GROWTH_SIZES) | {MAILQ_N}):
        reps = RUNS if n <= 10000 else min(RUNS, 5)
        cyc[n] = outbox_cycle(ob, sink, n, reps if n in GROWTH_SIZES or n == MAILQ_N else 0)

    # 2. flush, the peers
    pres = {}
    for n in FLUSH_SIZES:
        for reuse in (False, True):
            pres[n, reuse] = postfix_flush(pfc, sink, n, reuse)
    pfc.set(smtp_tls_connection_reuse="no")
    dres = {}
    if dma:
        for n in FLUSH_SIZES:
            if n <= DMA_FLUSH_MAX:
                try:
                    dres[n] = dma_flush(dma, sink, n)
                except (RuntimeError, TimeoutError) as e:
                    dres[n] = "failed: %s" % (str(e) or "timeout")

    # 3. peak RSS
    progress("peak RSS")
    files = [("1 KB", os.path.join(work, "1k.eml"))]
    with open(files[0][1], "wb") as f:
        f.write(MSG_1K)
    for mb in RSS_MB:
        path = os.path.join(work, "%dm.eml" % mb)
        write_big(path, mb)
        files.append(("%d MB" % mb if mb < 1024 else "%g GB" % (mb / 1024), path))
    rss = {}
    for label, cmd in ((OB, ob.send()), (ODQ, ob.send("-odq")), (MS, ms.send())):
        rss[label] = [peak_rss(cmd, p) for _, p in files]
    timed(ob.cmd("-q"))
    # Postfix's sendmail with its instance stopped: it and postdrop write the
    # maildrop file, nothing relays the big messages; then they are deleted
    pfc.halt()
    rss[PF] = [peak_rss(pfc.send(), p) for _, p in files]
    subprocess.run(["postsuper", "-c", pfc.conf, "-d", "ALL"], capture_output=True)
    pfc.resume()
    for _, p in files[1:]:
        os.unlink(p)

    return report(sink, ob, dma, dma_why, lat, mq_empty, bv, cyc, pres, dres, files, rss)


def report(sink, ob, dma, dma_why, lat, mq_empty, bv, cyc, pres, dres, files, rss):
    out = []
    out.append("outbox bench, %s, %s, %d cores; relay: Postfix smtpd + STARTTLS (RSA-2048), "
               "discarding, queue on %s; clients' spools on disk; latency: median [min-max] "
               "of %d runs" % (time.strftime("%Y-%m-%d %H:%M"), os.uname().nodename,
                               os.cpu_count(), "tmpfs" if sink.on_tmpfs else "disk", RUNS))

    def ms_(m):
        return "%.1f ms" % (1000 * m[0]) if m else ""

    def by(label):
        k = lat[label][2]
        return "yes" if k == RUNS else "no" if k == 0 else "%d/%d" % (k, RUNS)

    def fl(r):
        if r is None:
            return ["", "", ""]
        if isinstance(r, str):
            return [r, "", ""]
        return ["%.0f msg/s" % r["rate"], "%d" % r["conns"],
                "%.2f s" % r["cpu"] if not math.isnan(r["cpu"]) else "n/a"]

    def mb(xs):
        return [x.replace(" (", " MB (", 1) if "(" in x else x + " MB" for x in xs]

    f0 = FLUSH_SIZES[0]
    rl = [l for l, _ in files]
    head = (["peer", "exit, 1 KB", "delivered by exit?", "end to end",
             "flush of %d" % f0, "connections", "client CPU"] + ["RSS " + l for l in rl])
    rows = [[OB, ms_(lat[OB][0]), by(OB), ms_(lat[OB][1])] + fl(cyc[f0]) + mb(rss[OB]),
            [ODB, ms_(lat[ODB][0]), by(ODB), ms_(lat[ODB][1])] + fl(None) + [""] * len(rl),
            [ODQ, ms_(lat[ODQ][0]), "no (queued)", ""] + fl(None) + mb(rss[ODQ]),
            [MS, ms_(lat[MS][0]), by(MS), ms_(lat[MS][1]), "n/a (no queue)", "n/a", "n/a"]
            + mb(rss[MS])]
    if dma:
        dfl = fl(dres[f0]) if f0 in dres else ["not run (see 2.)", "", ""]
        rows.append(["dma " + dma.version, ms_(lat[DMA][0]), by(DMA), ms_(lat[DMA][1])]
                    + dfl + ["not measured"] + [""] * (len(rl) - 1))
    else:
        rows.append(["dma: not run, " + dma_why] + [""] * (len(head) - 1))
    rows.append([PF, ms_(lat[PF][0]), by(PF), ms_(lat[PF][1])] + fl(pres[f0, False]) + mb(rss[PF]))
    rows.append(["Postfix, smtp_tls_connection_reuse=yes", "", "", ""] + fl(pres[f0, True])
                + [""] * len(rl))
    out.append("")
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for r in rows:
        out.append("| " + " | ".join(r) + " |")

    # 1
    out.append("\n1. Submission, 1 KB, one recipient (ms)")
    out.append("%-28s %-22s %-24s %s" % ("", "exit", "end to end", "delivered by exit"))
    for label in (OB, ODB, ODQ, MS, PF, DMA):
        if label not in lat:
            continue
        x, e, _ = lat[label]
        out.append("%-28s %-22s %-24s %s" % (label if label != DMA else "dma " + dma.version,
                                             fmt_ms(x), fmt_ms(e) if e else "(queued only)",
                                             by(label) if e else ""))
    ex = {l: v[0][0] for l, v in lat.items()}
    ee = {l: v[1][0] for l, v in lat.items() if v[1]}
    out.append("ratios: outbox e2e / postfix e2e = %.2f (target <= 0.5); "
               "outbox exit / msmtp exit = %.2f (target <= 0.15)"
               % (ee[OB] / ee[PF], ex[OB] / ex[MS]))
    line = "        -odq exit / postfix exit = %.2f" % (ex[ODQ] / ex[PF])
    if DMA in ex:
        line += ("; -odq exit / dma exit = %.2f, -odb exit / dma exit = %.2f (targets <= 0.5)"
                 % (ex[ODQ] / ex[DMA], ex[ODB] / ex[DMA]))
    out.append(line)
    if dma:
        out.append("dma: asynchronous by default (forks a detached delivery and exits); it "
                   "relays with STARTTLS required but has no CA setting and does not verify "
                   "the certificate chain, so the relay's certificate is pinned with "
                   "FINGERPRINT (SHA-256), which it enforces")
    else:
        out.append("dma: not run: " + dma_why)

    # 2
    for n in FLUSH_SIZES:
        o, p, pr = cyc[n], pres[n, False], pres[n, True]
        out.append("\n2. Flush of %d queued messages: rate, wall time, connections, "
                   "client CPU, relay CPU (%% of one core)" % n)
        out.append(flush_line("outbox -q", o, ob.connections))
        out.append(flush_line("postfix (no reuse)", p))
        out.append(flush_line("postfix (TLS conn. reuse)", pr))
        if n in dres and isinstance(dres[n], str):
            out.append("%-26s %s" % ("dma -q", dres[n]))
        elif n in dres:
            out.append(flush_line("dma -q", dres[n]))
        elif dma:
            out.append("%-26s not run: it forks one delivery process per queued message, "
                       "all at once (%d here; BENCH_DMA_FLUSH_MAX=%d)"
                       % ("dma -q", n, DMA_FLUSH_MAX))
        else:
            out.append("%-26s not run: %s" % ("dma -q", dma_why))
        if o["queued"] != n or o["left"]:
            out.append("  note: outbox's mailq --json listed %d before the flush, %d after"
                       % (o["queued"], o["left"]))
        out.append("ratios: outbox / postfix-reuse msg/s = %.2f (target >= 2); "
                   "outbox / postfix msg/s = %.2f (target >= 5);"
                   % (o["rate"] / pr["rate"], o["rate"] / p["rate"]))
        out.append("        outbox / postfix-reuse client CPU per message = %.2f (target <= 0.5)"
                   % ((o["cpu"] / o["n"]) / (pr["cpu"] / pr["n"])))
    out.append("wall time: from the flush command until the relay logged the last message. "
               "Client CPU (a cgroup per client, user+system): outbox = sendmail -q and every "
               "process it started, until the last exited; postfix = its whole instance "
               "(master and every service) from postqueue -f until its queue was empty; "
               "dma = dma -q, its queue runner and every delivery process, until the last "
               "exited. The relay's CPU is in none of them.")

    # 3
    out.append("\n3. Peak RSS (MB; Postfix: sendmail or postdrop, whichever is larger)")
    out.append("%-28s" % "" + "".join("%14s" % l for l in [l for l, _ in files]))
    for label in (OB, ODQ, MS, PF):
        out.append("%-28s" % label + "".join("%14s" % x for x in rss[label]))

    # 4
    out.append("\n4. Cheap commands (ms)")
    out.append("%-27s%s" % ("mailq, empty queue:", fmt_ms(mq_empty)))
    out.append("%-27s%s (target < 500 at 10,000)"
               % ("mailq, %d queued:" % MAILQ_N, fmt_ms(cyc[MAILQ_N]["mailq"])))
    out.append("%-27s%s" % ("sendmail -bv:", fmt_ms(bv)))

    # 5
    out.append("\n5. Growth, outbox (flush: one run each; mailq: median of %d, of %d above "
               "10,000)" % (RUNS, min(RUNS, 5)))
    out.append("%8s %10s %12s %10s %12s %8s %10s" % ("queued", "flush s", "flush us/msg",
                                                      "mailq s", "mailq us/msg", "conns",
                                                      "relay CPU"))
    for n in GROWTH_SIZES:
        c = cyc[n]
        out.append("%8d %10.2f %12.0f %10.3f %12.1f %8d %9.0f%%"
                   % (n, c["dt"], 1e6 * c["dt"] / n, c["mailq"][0], 1e6 * c["mailq"][0] / n,
                      c["conns"], 100 * c["sink"]))
    if len(GROWTH_SIZES) > 1:
        a, b = cyc[GROWTH_SIZES[0]], cyc[GROWTH_SIZES[-1]]
        out.append("per-message cost, %d vs %d queued: flush %.2fx, mailq %.2fx (1.00 = linear)"
                   % (b["n"], a["n"], (b["dt"] / b["n"]) / (a["dt"] / a["n"]),
                      (b["mailq"][0] / b["n"]) / (a["mailq"][0] / a["n"])))
    return out


if __name__ == "__main__":
    main()
