"""dma (the DragonFly Mail Agent, Debian package "dma") as a bench peer.

dma is never installed: the package conflicts with postfix (both provide
mail-transport-agent). `apt-get download dma` fetches the .deb once into
CACHE, and each run unpacks it with `dpkg -x` into the bench's temporary
directory and runs that binary.

How it is configured (from its man page, dma(8), and what strace showed):
- dma reads /etc/dma/dma.conf, a path compiled in. bench/nshost.py runs in
  a private mount namespace (`unshare -m`) with an overlay over /etc whose
  upper layer is in the bench's temporary directory, so /etc/dma/dma.conf
  exists only there; the machine's /etc is never written.
- SPOOLDIR, ALIASES and MAILNAME are set in dma.conf to files in the
  temporary directory, so /var/spool/dma, /etc/aliases and /etc/mailname are
  not used. Run as root, dma switches to the user "mail" (setuid(8) under
  strace) before it reads its configuration and writes its spool, so the
  spool belongs to mail, mode 0770.
- SMARTHOST/PORT point at the bench's relay, NULLCLIENT sends everything
  there (no aliases, no local delivery), SECURETRANSFER + STARTTLS
  require STARTTLS (no OPPORTUNISTIC_TLS).
- dma has no CA file setting and does not verify the relay's certificate
  chain (a relay certificate from an untrusted CA was accepted when no
  FINGERPRINT was set). FINGERPRINT pins the SHA-256 of the relay's
  certificate, and dma does enforce it (a wrong one left the mail queued),
  so it is set to the sink's certificate: authenticated, by pin, not by CA.
- Submission (no DEFER): dma writes and fsyncs the spool files, forks a
  detached delivery process (setsid) and exits: asynchronous, like -odb.
  `dma -bq` queues without delivering; `dma -q` forks one delivery process,
  each with its own connection, per queued message, all at once, and exits.
"""
import glob
import json
import os
import pwd
import subprocess
import sys

from cpugroup import CpuGroup

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = "/var/cache/outbox-bench"


class Unavailable(Exception):
    pass


def fetch():
    """Path of the dma .deb in CACHE, downloading it the first time."""
    os.makedirs(CACHE, exist_ok=True)
    debs = sorted(glob.glob(os.path.join(CACHE, "dma_*.deb")))
    if not debs:
        r = subprocess.run(["apt-get", "download", "dma"], cwd=CACHE,
                           capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            r = subprocess.run(["apt-get", "download", "dma"], cwd=CACHE,
                               capture_output=True, text=True)
        debs = sorted(glob.glob(os.path.join(CACHE, "dma_*.deb")))
        if not debs:
            raise Unavailable("apt-get download dma failed: " + r.stderr.strip()[-200:])
    return debs[-1]


def fingerprint(pem):
    """SHA-256 of the certificate, hex without colons (dma's FINGERPRINT)."""
    r = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-fingerprint",
                        "-sha256"], capture_output=True, text=True, check=True)
    return r.stdout.strip().split("=", 1)[1].replace(":", "")


class Dma:
    name = "dma"

    def __init__(self, work, sink, certs):
        self.host = None
        deb = fetch()
        self.version = subprocess.run(["dpkg-deb", "-f", deb, "Version"],
                                      capture_output=True, text=True).stdout.strip()
        self.dir = os.path.join(work, "dma")
        root = os.path.join(self.dir, "root")
        os.makedirs(root)
        subprocess.run(["dpkg", "-x", deb, root], check=True)
        self.bin = os.path.join(root, "usr/sbin/dma")
        mail = pwd.getpwnam("mail")
        self.spool = os.path.join(self.dir, "spool")
        os.mkdir(self.spool, 0o770)
        os.chown(self.spool, mail.pw_uid, mail.pw_gid)
        os.chmod(self.spool, 0o770)
        aliases = os.path.join(self.dir, "aliases")
        open(aliases, "w").close()
        upper, ovwork = os.path.join(self.dir, "etc-upper"), os.path.join(self.dir, "etc-work")
        os.makedirs(os.path.join(upper, "dma"))
        os.mkdir(ovwork)
        with open(os.path.join(upper, "dma", "dma.conf"), "w") as f:
            f.write("SMARTHOST 127.0.0.1\nPORT %d\nNULLCLIENT\nALIASES %s\n"
                    "SPOOLDIR %s\nMAILNAME bench.example.com\nSECURETRANSFER\n"
                    "STARTTLS\nFINGERPRINT %s\n"
                    % (sink.port, aliases, self.spool, fingerprint(certs["server"])))
        self.err = open(os.path.join(self.dir, "nshost.err"), "w+")
        # every dma process runs in this cgroup, for its CPU time
        # (see cpugroup.py), nshost.py included (it mostly sleeps)
        self.cg = CpuGroup("dma")
        with self.cg.joined():
            self.host = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", sys.executable,
                 os.path.join(HERE, "nshost.py"), upper, ovwork],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.host.stdout.readline()
        if not line:
            self.close()
            self.err.seek(0)
            raise Unavailable("could not set up its mount namespace: "
                              + self.err.read().strip()[-200:])
        self.msg = os.path.join(self.dir, "msg.eml")

    def _req(self, **req):
        self.host.stdin.write(json.dumps(req) + "\n")
        self.host.stdin.flush()
        line = self.host.stdout.readline()
        if not line:
            raise RuntimeError("dma: nshost.py died")
        return json.loads(line)

    def send(self, *flags):
        return [self.bin, *flags, "-f", "bench@example.com", "-i", "bob@example.org"]

    def run(self, argv, data=b""):
        """Run argv in the namespace; (t0 on CLOCK_MONOTONIC, seconds to exit)."""
        with open(self.msg, "wb") as f:
            f.write(data)
        r = self._req(op="run", argv=argv, input=self.msg)
        if r["rc"] != 0:
            raise RuntimeError("dma: exit %d: %s" % (r["rc"], r["err"]))
        return r["t0"], r["dt"]

    def queue(self, n, data, jobs):
        """n messages queued with dma -bq (no delivery attempt)."""
        with open(self.msg, "wb") as f:
            f.write(data)
        r = self._req(op="runmany", argv=self.send("-bq"), input=self.msg, n=n, jobs=jobs)
        if r["failed"]:
            raise RuntimeError("dma -bq: %d failed: %s" % (r["failed"], r["err"]))

    def idle(self, timeout):
        """Wait for every dma process to exit; how many are left."""
        return self._req(op="idle", timeout=timeout)["live"]

    def close(self):
        if self.host is None:
            if hasattr(self, "cg"):
                self.cg.close()
            return
        try:
            self.host.stdin.close()         # nshost.py kills and reaps the rest
        except OSError:
            pass
        try:
            self.host.wait(30)
        except subprocess.TimeoutExpired:
            self.host.kill()
            self.host.wait()
        self.host = None
        self.cg.close()
