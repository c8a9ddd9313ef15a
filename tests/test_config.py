"""Finding and reading the configuration, through the built binary."""
import os

import pytest

MSG = b"Subject: c\n\nx\n"


def write(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return str(path)


def conf_for(ob, **override):
    """The fixture's config text, with [mail] from changed to tell files apart."""
    cfg = {k: dict(v) for k, v in ob.config.items()}
    for k, v in override.items():
        cfg["mail"][k] = v
    return "".join("[%s]\n%s" % (s, "".join("%s = %s\n" % kv for kv in kv_.items()))
                   for s, kv_ in cfg.items() if kv_)


def sender_with(ob, env):
    res = ob.run(["-i", "bob@example.org"], input=MSG, env=env, use_conf=False)
    assert res.returncode == 0, res.stderr
    return ob.relay.messages[-1]["mail_from"]


def test_lookup_order(relay, outbox, tmp_path):
    r = relay()
    ob = outbox(r)
    home_conf = write(os.path.join(ob.home, ".config/outbox/outbox.conf"),
                      conf_for(ob, **{"from": "home@example.com"}))
    assert sender_with(ob, {}) == "home@example.com"
    xdg = tmp_path / "xdg"
    write(str(xdg / "outbox/outbox.conf"), conf_for(ob, **{"from": "xdg@example.com"}))
    assert sender_with(ob, {"XDG_CONFIG_HOME": str(xdg)}) == "xdg@example.com"
    env_conf = write(str(tmp_path / "env.conf"), conf_for(ob, **{"from": "env@example.com"}))
    assert sender_with(ob, {"XDG_CONFIG_HOME": str(xdg),
                            "OUTBOX_CONFIG": env_conf}) == "env@example.com"
    res = ob.run(["-C", home_conf, "-i", "bob@example.org"], input=MSG,
                 env={"OUTBOX_CONFIG": env_conf}, use_conf=False)
    assert res.returncode == 0
    assert r.messages[-1]["mail_from"] == "home@example.com"


def test_missing_explicit_config_is_an_error(outbox, tmp_path):
    ob = outbox()
    res = ob.run(["-C", str(tmp_path / "nope.conf"), "-i", "bob@example.org"],
                 input=MSG, use_conf=False)
    assert res.returncode == 78
    assert b"nope.conf: cannot open" in res.stderr


@pytest.mark.parametrize("text,line,what", [
    ("[relay]\nhots = x\n", 2, b"unknown key hots in [relay]"),
    ("[relais]\nhost = x\n", 1, b"unknown section [relais]"),
    ("[relay]\nport = 25\nport = 26\n", 3, b"port given twice"),
    ("[relay]\nport = 99999\n", 2, b"not a port number"),
    ("[relay]\ntls = maybe\n", 2, b"tls: expected starttls, tls or none"),
    ("[queue]\nmax_age = soon\n", 2, b"not a duration"),
    ("[mail]\nfrom = a b@example.org\n", 2, b"space in address"),
    ("# c\n[relay]\nhost = " + "h" * 5000 + "\n", 3, b"line too long"),
    ("[relay]\njust words\n", 2, b"syntax error"),
])
def test_strict_errors_name_file_and_line(outbox, tmp_path, text, line, what):
    ob = outbox()
    path = write(str(tmp_path / "bad.conf"), text)
    res = ob.run(["-C", path, "-i", "bob@example.org"], input=MSG, use_conf=False)
    assert res.returncode == 78
    assert res.stderr.startswith(b"sendmail: %s:%d: " % (path.encode(), line)), res.stderr
    assert what in res.stderr and res.stderr.count(b"\n") == 1
    assert ob.queue_files() == []


def test_tls_none_refused_for_remote_host(outbox, tmp_path):
    ob = outbox()
    path = write(str(tmp_path / "c.conf"), "[relay]\nhost = smtp.example.com\ntls = none\n")
    res = ob.run(["-C", path, "-i", "bob@example.org"], input=MSG, use_conf=False)
    assert res.returncode == 78 and b"loopback" in res.stderr


def test_inline_comments_and_spacing(relay, outbox, tmp_path):
    r = relay()
    ob = outbox(r)
    text = open(ob.conf_path).read().replace(
        "port = %d" % r.port, "  port   =   %d   ; the test relay" % r.port)
    path = write(str(tmp_path / "c.conf"), text)
    res = ob.run(["-C", path, "-i", "bob@example.org"], input=MSG, use_conf=False)
    assert res.returncode == 0, res.stderr
    assert len(r.wait_for(1)) == 1


def test_every_configuration_key_is_documented():
    """Each key of conf/conf.c's tables is in the man page and the sample."""
    import re
    root = os.path.join(os.path.dirname(__file__), "..")
    src = open(os.path.join(root, "conf", "conf.c")).read()
    keys = re.findall(r'\bR\("([a-z0-9_]+)"', src) + \
        re.findall(r'\bK\("[a-z]+", "([a-z0-9_]+)"', src)
    assert len(keys) > 30
    man = open(os.path.join(root, "docs", "outbox.8")).read().replace("\\-", "-")
    sample = open(os.path.join(root, "conf", "outbox.conf.sample")).read()
    for key in keys:
        assert "\\fB%s\\fR" % key in man, key
        assert re.search(r"^;%s = " % key, sample, re.M), key
