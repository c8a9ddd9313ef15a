"""A real Postfix on loopback for interop tests, started and stopped by the
test, never the machine's MTA: its own configuration directory, queue and
mail directories under a fresh /tmp directory, listening on 127.0.0.1 at a
free port, with STARTTLS from the test CA's certificate. Mail to any
address @example.org is delivered to one Maildir, which messages() reads.

Postfix(certs) offers STARTTLS (may) and no AUTH, and relays for
127.0.0.0/8. Postfix(certs, sasl=True) is a submission server instead:
STARTTLS required (smtpd_tls_security_level = encrypt), AUTH only after
it, and only authenticated clients may send (permit_sasl_authenticated,
reject). AUTH is Cyrus SASL reading a sasldb in the same temporary
directory (user alice, password s3cret, realm postfix.test): Postfix's
cyrus_sasl_config_path points there at an smtpd.conf of our own, so
/etc/sasldb2, /etc/postfix/sasl and saslauthd are never used. log_text()
returns Postfix's log (its sasl_username= lines show who authenticated).

Needs the postfix package (installed unconfigured by install.sh, whose
system instance never runs) and root; sasl=True also needs sasl2-bin
(saslpasswd2) and libsasl2-modules / libsasl2-modules-db (the PLAIN,
LOGIN, CRAM-MD5 and sasldb plugins).
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

# sasl=True: applied with postconf -e over MAIN_CF. The realm is set so that
# Cyrus looks "alice" up as alice@postfix.test (left empty, it would be this
# machine's hostname).
SASL_MAIN_CF = [
    "smtpd_tls_security_level = encrypt",
    "smtpd_tls_auth_only = yes",
    "smtpd_tls_received_header = yes",
    "smtpd_sasl_auth_enable = yes",
    "smtpd_sasl_type = cyrus",
    "smtpd_sasl_path = smtpd",
    "cyrus_sasl_config_path = {base}/conf/sasl",
    "smtpd_sasl_local_domain = postfix.test",
    "smtpd_sasl_security_options = noanonymous",
    "smtpd_sasl_authenticated_header = yes",
    "smtpd_relay_restrictions = permit_sasl_authenticated, reject",
]

# Cyrus SASL's configuration for the application "smtpd" (smtpd_sasl_path),
# in <config_directory>/sasl: Debian's smtpd reads smtpd.conf from there (under
# strace a cyrus_sasl_config_path outside the config directory went unread and
# smtpd fell back to /etc/sasldb2), and cyrus_sasl_config_path names it too.
SASL_SMTPD_CONF = """\
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: {base}/conf/sasl/sasldb2
mech_list: PLAIN LOGIN CRAM-MD5
"""

SASL_USER = "alice"
SASL_PASSWORD = "s3cret"
SASL_REALM = "postfix.test"


def available():
    return (os.geteuid() == 0 and shutil.which("postfix") is not None
            and os.path.exists("/etc/postfix/master.cf"))


def sasl_available():
    """Can Postfix(sasl=True) run here: Postfix built with Cyrus SASL,
    saslpasswd2, and the sasldb and PLAIN plugins."""
    if not available() or shutil.which("saslpasswd2") is None:
        return False
    types = subprocess.run(["postconf", "-a"], capture_output=True, text=True)
    plugins = glob.glob("/usr/lib/*/sasl2/libsasldb.so*") and \
        glob.glob("/usr/lib/*/sasl2/libplain.so*")
    return "cyrus" in types.stdout.split() and bool(plugins)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postfix:
    def __init__(self, certs, sasl=False):
        self.base = tempfile.mkdtemp(prefix="outbox-postfix-", dir="/tmp")
        os.chmod(self.base, 0o755)
        self.conf = os.path.join(self.base, "conf")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.certs = certs
        self.proc = None
        self.sasl = sasl
        self.tls_mode = "starttls"      # for the outbox fixture
        # the outbox fixture writes the first user and password
        self.users = {SASL_USER: SASL_PASSWORD} if sasl else {}

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
        if self.sasl:
            self._configure_sasl(pw)
        subprocess.run(["/etc/postfix/post-install", "config_directory=" + self.conf,
                        "meta_directory=/etc/postfix",
                        "queue_directory=" + os.path.join(self.base, "queue"),
                        "daemon_directory=/usr/lib/postfix/sbin",
                        "command_directory=/usr/sbin", "create-missing"],
                       check=True, capture_output=True)

    def _configure_sasl(self, pw):
        sasl = os.path.join(self.conf, "sasl")
        os.mkdir(sasl)
        with open(os.path.join(sasl, "smtpd.conf"), "w") as f:
            f.write(SASL_SMTPD_CONF.format(base=self.base))
        db = os.path.join(sasl, "sasldb2")
        subprocess.run(["saslpasswd2", "-f", db, "-c", "-p", "-u", SASL_REALM,
                        SASL_USER], input=SASL_PASSWORD.encode(),
                       check=True, capture_output=True)
        # smtpd reads it as the postfix user (chroot is off); root-owned,
        # as postfix check wants every file under the config directory
        os.chown(db, 0, pw.pw_gid)
        os.chmod(db, 0o640)
        subprocess.run(["postconf", "-c", self.conf, "-e"] +
                       [line.format(base=self.base) for line in SASL_MAIN_CF],
                       check=True)

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

    def log_text(self):
        """Postfix's log so far (maillog_file, as text)."""
        with open(os.path.join(self.base, "postfix.log"), errors="replace") as f:
            return f.read()

    def wait_log(self, text, timeout=10):
        """The log once it contains text (or as it is at the timeout)."""
        deadline = time.time() + timeout
        while True:
            log = self.log_text()
            if text in log or time.time() > deadline:
                return log
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
