"""A real Postfix on loopback for interop tests, started and stopped by the
test, never the machine's MTA: its own configuration directory, queue and
mail directories under a fresh /tmp directory, listening on 127.0.0.1 at a
free port, with STARTTLS from the test CA's certificate. Mail to any
address @example.org is delivered to one Maildir, which messages() reads.

Needs the postfix package (installed unconfigured by install.sh, whose
system instance never runs) and root.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = example.org
virtual_mailbox_base = {base}/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
smtpd_tls_cert_file = {base}/server.pem
smtpd_tls_key_file = {base}/server.key
smtpd_tls_security_level = may
maillog_file = /dev/stdout
alias_maps =
alias_database =
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
"""


def available():
    return (os.geteuid() == 0 and shutil.which("postfix") is not None
            and os.path.exists("/etc/postfix/master.cf"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postfix:
    def __init__(self, certs):
        self.base = tempfile.mkdtemp(prefix="outbox-postfix-", dir="/tmp")
        os.chmod(self.base, 0o755)
        self.conf = os.path.join(self.base, "conf")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.certs = certs
        self.proc = None
        self.tls_mode = "starttls"      # for the outbox fixture
        self.users = {}                 # no AUTH (Postfix SASL needs Dovecot)

    def _configure(self):
        pw = pwd.getpwnam("postfix")
        for d in ("conf", "queue", "data", "mail"):
            os.mkdir(os.path.join(self.base, d))
        shutil.copy(self.certs["server"], os.path.join(self.base, "server.pem"))
        shutil.copy(self.certs["server_key"], os.path.join(self.base, "server.key"))
        os.chown(os.path.join(self.base, "data"), pw.pw_uid, pw.pw_gid)
        os.chown(os.path.join(self.base, "mail"), pw.pw_uid, pw.pw_gid)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(base=self.base, uid=pw.pw_uid, gid=pw.pw_gid))
        with open("/etc/postfix/master.cf") as f:
            master = f.read()
        master = master.replace(
            "smtp      inet  n       -       y       -       -       smtpd",
            "127.0.0.1:%d inet n - n - - smtpd" % self.port)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(master)
        subprocess.run(["postconf", "-c", self.conf, "-F", "*/*/chroot = n"], check=True)
        subprocess.run(["/etc/postfix/post-install", "config_directory=" + self.conf,
                        "meta_directory=/etc/postfix",
                        "queue_directory=" + os.path.join(self.base, "queue"),
                        "daemon_directory=/usr/lib/postfix/sbin",
                        "command_directory=/usr/sbin", "create-missing"],
                       check=True, capture_output=True)

    def start(self):
        self._configure()
        self.log = open(os.path.join(self.base, "postfix.log"), "w")
        self.proc = subprocess.Popen(["postfix", "-c", self.conf, "start-fg"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("postfix did not start: " + open(self.log.name).read())

    def messages(self, n=1, timeout=10):
        """The raw messages delivered to the Maildir, oldest first."""
        deadline = time.time() + timeout
        while True:
            files = sorted(glob.glob(os.path.join(self.base, "mail/box/new/*")),
                           key=os.path.getmtime)
            if len(files) >= n or time.time() > deadline:
                return [open(p, "rb").read() for p in files]
            time.sleep(0.1)

    def stop(self):
        if self.proc:
            subprocess.run(["postfix", "-c", self.conf, "stop"], capture_output=True)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
        shutil.rmtree(self.base, ignore_errors=True)
