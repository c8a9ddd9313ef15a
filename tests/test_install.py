"""install.sh, run into a scratch root (OUTBOX_SYSROOT, a documented test
hook, prefixes the system paths it touches) with --no-deps."""
import os
import stat
import subprocess

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def install(root, *args):
    env = dict(os.environ, OUTBOX_SYSROOT=str(root))
    res = subprocess.run([os.path.join(ROOT, "install.sh"), "--no-deps",
                          "--prefix", str(root / "usr")] + list(args),
                         capture_output=True, env=env, text=True)
    return res


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs as root")


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_install_then_again_changes_nothing(tmp_path):
    res = install(tmp_path)
    assert res.returncode == 0, res.stderr
    sbin = tmp_path / "usr/sbin"
    assert mode(sbin / "sendmail") == 0o755
    assert os.readlink(sbin / "mailq") == "sendmail"
    assert os.readlink(sbin / "newaliases") == "sendmail"
    assert (tmp_path / "usr/share/man/man8/outbox.8").exists()
    spool = tmp_path / "var/spool/outbox"
    assert mode(spool) == 0o1733 and os.stat(spool).st_uid == 0
    conf = tmp_path / "etc/outbox.conf"
    assert mode(conf) == 0o644
    assert conf.read_text() == open(os.path.join(ROOT, "conf/outbox.conf.sample")).read()
    again = install(tmp_path)
    assert again.returncode == 0 and "nothing changed" in again.stdout


def test_existing_config_is_never_overwritten(tmp_path):
    conf = tmp_path / "etc/outbox.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[relay]\nhost = mine.example\n")
    assert install(tmp_path).returncode == 0
    assert conf.read_text() == "[relay]\nhost = mine.example\n"


def test_system_links_keep_a_backup_that_uninstall_restores(tmp_path):
    usr_sbin = tmp_path / "usr/sbin"
    usr_sbin.mkdir(parents=True)
    old = usr_sbin / "sendmail"
    old.write_text("#!/bin/sh\necho old\n")
    (tmp_path / "usr/lib").mkdir(parents=True)
    os.symlink("../sbin/sendmail", tmp_path / "usr/lib/sendmail")
    res = subprocess.run([os.path.join(ROOT, "install.sh"), "--no-deps", "--prefix",
                          str(tmp_path / "opt"), "--system"], capture_output=True, text=True,
                         env=dict(os.environ, OUTBOX_SYSROOT=str(tmp_path)))
    assert res.returncode == 0, res.stderr
    bin_ = str(tmp_path / "opt/sbin/sendmail")
    assert os.readlink(usr_sbin / "sendmail") == bin_
    assert os.readlink(tmp_path / "usr/lib/sendmail") == bin_
    assert (usr_sbin / "sendmail.outbox-backup").read_text() == "#!/bin/sh\necho old\n"
    res = subprocess.run([os.path.join(ROOT, "install.sh"), "--no-deps", "--prefix",
                          str(tmp_path / "opt"), "--uninstall"], capture_output=True,
                         text=True, env=dict(os.environ, OUTBOX_SYSROOT=str(tmp_path)))
    assert res.returncode == 0, res.stderr
    assert (usr_sbin / "sendmail").read_text() == "#!/bin/sh\necho old\n"
    assert os.readlink(tmp_path / "usr/lib/sendmail") == "../sbin/sendmail"
    assert not os.path.exists(bin_)
    assert "queued mail is never deleted" in res.stdout


def test_timer_without_systemd_is_a_cron_entry(tmp_path):
    res = install(tmp_path, "--timer", "www-data")
    assert res.returncode == 0, res.stderr
    cron = (tmp_path / "etc/cron.d/outbox-www-data").read_text()
    assert "*/5 * * * * www-data %s -q" % (tmp_path / "usr/sbin/sendmail") in cron
    assert "nothing changed" in install(tmp_path, "--timer", "www-data").stdout
    assert install(tmp_path, "--uninstall").returncode == 0
    assert not (tmp_path / "etc/cron.d/outbox-www-data").exists()


def test_unknown_option_is_64(tmp_path):
    assert install(tmp_path, "--frobnicate").returncode == 64
