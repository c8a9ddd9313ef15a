#!/usr/bin/python3
"""make bench: outbox beside msmtp and Postfix's sendmail, same relay, one run.

The relay is a real Postfix smtpd on loopback (STARTTLS, RSA-2048 test
certificate) that discards what it accepts, so it is not the bottleneck;
its CPU share is printed. Postfix's sendmail runs as its own instance
(own configuration directory, queue and master) relaying to that sink:
it never becomes this machine's MTA. Every figure is a median over
repeated runs with its spread (min-max), and the ratios are taken within
this run. Nothing here is asserted: `make check` has no timing tests.
"""
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from certs import make_certs            # noqa: E402
import postfix as pf                    # noqa: E402

OUTBOX = os.path.join(ROOT, "sendmail")
RUNS = int(os.environ.get("BENCH_RUNS", "21"))
FLUSH_N = int(os.environ.get("BENCH_FLUSH", "1000"))
MSG_1K = b"Subject: bench\nTo: bob@example.org\n\n" + (b"x" * 70 + b"\n") * 13


class Sink(pf.Postfix):
    """The relay: Postfix smtpd that accepts and discards."""

    def _configure(self):
        super()._configure()
        with open(os.path.join(self.conf, "main.cf"), "a") as f:
            f.write("transport_maps = static:discard\nsmtpd_tls_session_cache_database =\n"
                    "smtpd_client_connection_count_limit = 0\n"
                    "smtpd_client_connection_rate_limit = 0\n"
                    "default_process_limit = 200\n")

    def connections(self):
        return open(self.log.name).read().count(" connect from ")

    def cpu(self):
        """CPU seconds used so far by the sink's smtpd processes."""
        total = 0.0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = open("/proc/%s/cmdline" % pid, "rb").read()
                if b"smtpd" not in cmd and b"cleanup" not in cmd:
                    continue
                st = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
                total += (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
            except OSError:
                continue
        return total


def median_spread(xs):
    return statistics.median(xs), min(xs), max(xs)


def timed(cmd, data=b"", env=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, input=data, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (cmd[0], r.returncode, r.stderr[-300:]))
    return dt


def peak_rss(cmd, data):
    """Peak RSS in MB of one run, from /usr/bin/time."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, input=data,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return int(r.stderr.strip().splitlines()[-1]) / 1024


class Outbox:
    name = "outbox"

    def __init__(self, work, sink, certs):
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
    """Postfix's sendmail, its own instance, relaying to the sink."""
    name = "postfix"

    def __init__(self, certs, sink, reuse=False):
        super().__init__(certs)
        self.sink, self.reuse = sink, reuse

    def _configure(self):
        super()._configure()
        with open(os.path.join(self.conf, "main.cf"), "a") as f:
            f.write("relayhost = [127.0.0.1]:%d\nsmtp_tls_security_level = encrypt\n"
                    "smtp_tls_CAfile = %s\nsmtp_tls_connection_reuse = %s\n"
                    "virtual_mailbox_domains =\ndefault_destination_concurrency_limit = 20\n"
                    % (self.sink.port, self.certs["ca"], "yes" if self.reuse else "no"))

    def send(self):
        return ["/usr/sbin/sendmail", "-C", self.conf, "-i", "bob@example.org"]

    def queue_empty(self):
        q = os.path.join(self.base, "queue")
        return not any(os.listdir(os.path.join(q, d)) for d in
                       ("incoming", "active", "deferred", "maildrop"))


def wait_until(pred, timeout=600):
    t = time.time()
    while not pred():
        if time.time() - t > timeout:
            raise TimeoutError
        time.sleep(0.005)


def sink_count(sink):
    return open(sink.log.name).read().count("status=sent")


def fig_latency(peers, sink):
    rows = []
    for label, p, flags in peers:
        xs, e2e = [], []
        for _ in range(RUNS):
            before = sink_count(sink)
            t = time.perf_counter()
            timed(p.send(*flags) if flags is not None else p.send(), MSG_1K)
            xs.append(time.perf_counter() - t)
            if "-odq" in (flags or ()):
                continue            # queued only: nothing reaches the relay
            wait_until(lambda: sink_count(sink) > before, 30)
            e2e.append(time.perf_counter() - t)
        rows.append((label, median_spread(xs), median_spread(e2e) if e2e else None))
    return rows


def fig_flush(ob, sink, n):
    """outbox: n messages queued with -odq, then one sendmail -q."""
    for _ in range(n):
        timed(ob.send("-odq"), MSG_1K)
    before, conns, cpu0 = sink_count(sink), sink.connections(), sink.cpu()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    timed(ob.cmd("-q"))
    wait_until(lambda: sink_count(sink) >= before + n)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return n / dt, sink.connections() - conns, client_cpu, (sink.cpu() - cpu0) / dt


def fig_flush_postfix(pc, sink, n):
    subprocess.run(["postfix", "-c", pc.conf, "stop"], capture_output=True)
    pc.proc.wait(15)
    for _ in range(n):
        timed(pc.send(), MSG_1K)
    before, conns = sink_count(sink), sink.connections()
    t = time.perf_counter()
    pc.log = open(os.path.join(pc.base, "postfix.log"), "a")
    pc.proc = subprocess.Popen(["postfix", "-c", pc.conf, "start-fg"], stdout=pc.log,
                               stderr=subprocess.STDOUT)
    wait_until(lambda: sink_count(sink) >= before + n)
    dt = time.perf_counter() - t
    cpu = 0.0
    return n / dt, sink.connections() - conns, cpu


def fig_mailq(ob, n):
    xs = [timed(ob.cmd("-bp")) for _ in range(RUNS)]
    return median_spread(xs)


def main():
    if not pf.available():
        sys.exit("bench: needs root, postfix and msmtp (./install.sh installs them)")
    work = tempfile.mkdtemp(prefix="outbox-bench-", dir="/tmp")
    os.chmod(work, 0o755)
    certs = make_certs(os.path.join(work, "certs"))
    for k in certs:
        if isinstance(certs[k], str) and os.path.isfile(certs[k]):
            os.chmod(certs[k], 0o644)
    sink = Sink(certs).start()
    pfc = PostfixClient(certs, sink).start()
    try:
        ob, ms = Outbox(work, sink, certs), Msmtp(work, sink, certs)
        out = []
        out.append("outbox bench, %s, %d runs per figure, relay: Postfix smtpd + STARTTLS "
                   "(RSA-2048), discarding" % (time.strftime("%Y-%m-%d"), RUNS))
        lat = fig_latency([("outbox (delivered on exit)", ob, ()),
                           ("outbox -odq", ob, ("-odq",)),
                           ("msmtp", ms, None),
                           ("postfix sendmail", pfc, None)], sink)
        # -odq leaves mail queued: drain before the flush figures
        timed(ob.cmd("-q"))
        out.append("\n1. Submission, 1 KB, one recipient (seconds: median [min-max])")
        out.append("%-28s %-26s %-26s" % ("", "exit", "end to end (at the relay)"))
        for label, (m, lo, hi), e2e in lat:
            out.append("%-28s %.4f [%.4f-%.4f]   %s" % (
                label, m, lo, hi, "%.4f [%.4f-%.4f]" % e2e if e2e else "(queued only)"))
        by = {l: (x[0], y[0] if y else None) for l, x, y in lat}
        out.append("ratios: outbox e2e / postfix e2e = %.2f (target <= 0.5); outbox exit / msmtp "
                   "exit = %.2f (target <= 0.15); -odq exit / postfix exit = %.2f"
                   % (by["outbox (delivered on exit)"][1] / by["postfix sendmail"][1],
                      by["outbox (delivered on exit)"][0] / by["msmtp"][0],
                      by["outbox -odq"][0] / by["postfix sendmail"][0]))
        rate, conns, cpu, sink_share = fig_flush(ob, sink, FLUSH_N)
        prate, pconns, _ = fig_flush_postfix(pfc, sink, FLUSH_N)
        out.append("\n2. Flush of %d queued messages" % FLUSH_N)
        out.append("outbox -q:          %7.0f msg/s, %d connection(s), client CPU %.2f s "
                   "(%.2f ms/msg), relay CPU share %.0f%%"
                   % (rate, conns, cpu, 1000 * cpu / FLUSH_N, 100 * sink_share))
        out.append("postfix (no reuse): %7.0f msg/s, %d connection(s)" % (prate, pconns))
        out.append("ratio outbox/postfix msg/s = %.1f" % (rate / prate))
        out.append("\n3. Peak RSS (MB)")
        big = os.path.join(work, "big.eml")
        with open(big, "wb") as f:
            f.write(b"Subject: big\n\n")
            line = b"y" * 76 + b"\n"
            for _ in range(50 * 1024 * 1024 // len(line)):
                f.write(line)
        big_data = open(big, "rb").read()
        for label, cmd in (("outbox", ob.send()), ("outbox -odq", ob.send("-odq")),
                           ("msmtp", ms.send())):
            out.append("%-12s 1 KB %5.1f   50 MB %5.1f" % (label, peak_rss(cmd, MSG_1K),
                                                           peak_rss(cmd, big_data)))
        timed(ob.cmd("-q"))
        out.append("\n4. Cheap commands (seconds, median [min-max])")
        m = fig_mailq(ob, 0)
        out.append("mailq, empty queue:      %.4f [%.4f-%.4f]" % m)
        for _ in range(10000 if FLUSH_N >= 1000 else FLUSH_N):
            timed(ob.send("-odq"), MSG_1K)
        m = fig_mailq(ob, 10000)
        out.append("mailq, 10,000 queued:    %.4f [%.4f-%.4f] (target < 0.5)" % m)
        xs = [timed(ob.cmd("-bv", "bob@example.org")) for _ in range(RUNS)]
        out.append("sendmail -bv:            %.4f [%.4f-%.4f]" % median_spread(xs))
        print("\n".join(out))
    finally:
        pfc.stop()
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
