"""The relay transport for production (issue 5): several relays in order,
per-sender relays, parallel connections for a flush, pacing, routing
(address, source, IPv6, SOCKS5), TLS controls and the password sources.
Each test starts its own loopback relays."""
import email
import os
import re
import time

import pytest

from postfix import free_port

MSG = b"Subject: transport\n\nbody\n"


def section(r, certs, **extra):
    """The keys of a relay section that points at test relay r."""
    keys = {"host": r.host, "port": str(r.port), "tls": r.tls_mode,
            "ca_file": certs["ca"]}
    if r.users:
        user, password = next(iter(r.users.items()))
        keys.update(user=user, password=password)
    keys.update(extra)
    return keys


def send(ob, *args, sender=None, msg=MSG, env=None):
    argv = (["-f", sender] if sender else []) + ["-i"] + list(args or ["bob@example.org"])
    return ob.run(argv, input=msg, env=env)


# -- several relays ---------------------------------------------------------

def test_next_relay_when_the_first_cannot_be_reached(relay, outbox, certs):
    backup = relay()
    ob = outbox(backup, relay={"port": free_port()},
                **{"relay:backup": section(backup, certs)})
    res = send(ob)
    assert res.returncode == 0, res.stderr
    assert len(backup.wait_for(1)) == 1
    assert ob.queue_files() == []


def test_next_relay_when_the_first_fails_tls(relay, outbox, certs):
    bad, good = relay(cert="wrong"), relay()
    ob = outbox(bad, **{"relay:good": section(good, certs)})
    assert send(ob).returncode == 0
    good.wait_for(1)
    assert bad.messages == [] and bad.connections == 1


def test_every_relay_down_keeps_the_mail_with_the_first_reason(relay, outbox, certs):
    r = relay()
    ob = outbox(r, relay={"port": free_port()},
                **{"relay:b": dict(section(r, certs), port=str(free_port()))})
    res = send(ob)
    assert res.returncode == 0
    q = ob.mailq().stdout.decode()
    assert "cannot connect" in q and "every other relay failed too" in q
    assert len(ob.queue_files()) == 2


def test_a_relay_that_refuses_a_recipient_is_not_failed_over(relay, outbox, certs):
    first = relay(rcpt_rules={"bob@example.org": "550 5.1.1 no such user"})
    second = relay()
    ob = outbox(first, **{"relay:second": section(second, certs)})
    res = send(ob)
    assert res.returncode == 69
    assert second.connections == 0


# -- per-sender relays -------------------------------------------------------

def test_senders_pick_the_relay_and_its_credentials(relay, outbox, certs):
    work = relay(users={"w@work.example": "work-pw"})
    home = relay(users={"h@home.example": "home-pw"})
    ob = outbox(work, relay={"senders": "*@work.example"},
                **{"relay:home": section(home, certs, senders="*@home.example")})
    assert send(ob, sender="alice@WORK.example").returncode == 0
    assert send(ob, sender="bob@home.example").returncode == 0
    (w,), (h,) = work.wait_for(1), home.wait_for(1)
    assert (w["mail_from"], w["auth_user"]) == ("alice@WORK.example", "w@work.example")
    assert (h["mail_from"], h["auth_user"]) == ("bob@home.example", "h@home.example")
    assert len(work.messages) == 1 and len(home.messages) == 1


def test_a_sender_no_relay_takes_stays_queued(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"senders": "*@work.example"})
    res = send(ob, sender="eve@elsewhere.example")
    assert res.returncode == 0
    assert r.connections == 0
    assert "no relay takes mail from <eve@elsewhere.example>" in ob.mailq().stdout.decode()
    v = ob.run(["-bv", "-f", "eve@elsewhere.example", "bob@example.org"])
    assert b"queued only: no relay takes sender <eve@elsewhere.example>" in v.stdout


def test_bounces_go_through_any_relay(relay, outbox, certs):
    r = relay(rcpt_rules={"bad@example.org": "550 5.1.1 no such user"})
    ob = outbox(r, relay={"senders": "*@example.com"})
    assert send(ob, "bad@example.org", "bob@example.org",
                sender="app@example.com").returncode == 0
    msgs = r.wait_for(2)
    assert msgs[1]["mail_from"] == "" and msgs[1]["rcpt_tos"] == ["app@example.com"]


# -- a flush over several connections ----------------------------------------

def queue_many(ob, n):
    for i in range(n):
        res = ob.run(["-odq", "-i", "bob@example.org"],
                     input=b"Subject: n %d\nMessage-ID: <n%d@test>\n\nbody %d\n" % (i, i, i))
        assert res.returncode == 0, res.stderr


def test_a_large_flush_uses_at_most_connections_and_sends_each_once(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"connections": "3"})
    queue_many(ob, 1000)
    res = ob.run(["-q"], timeout=300)
    assert res.returncode == 0, res.stderr
    msgs = r.wait_for(1000)
    ids = [email.message_from_bytes(m["data"])["Message-ID"] for m in msgs]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert 1 < r.connections <= 3 and r.max_concurrent <= 3
    assert ob.queue_files() == []


def test_connections_one_means_one_connection(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"connections": "1"})
    queue_many(ob, 60)
    assert ob.run(["-q"], timeout=120).returncode == 0
    assert len(r.wait_for(60)) == 60 and r.connections == 1


def test_max_rate_paces_the_sends(relay, outbox):
    r = relay()
    arrivals = []
    r.on_message = lambda msg: arrivals.append(time.monotonic())
    ob = outbox(r, relay={"max_rate": "10"})
    queue_many(ob, 6)
    assert ob.run(["-q"]).returncode == 0
    r.wait_for(6)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= 0.08, gaps          # 10 per second: 100 ms apart
    # the slot is shared through the spool: a submission right after the
    # flush waits for it too
    before = time.monotonic()
    send(ob)
    r.wait_for(7)
    assert arrivals[-1] - arrivals[-2] >= 0.08


# -- routing -------------------------------------------------------------------

def test_an_inherited_all_proxy_is_ignored(relay, outbox):
    r = relay()
    ob = outbox(r)
    dead = "socks5h://127.0.0.1:%d" % free_port()
    res = send(ob, env={"all_proxy": dead, "ALL_PROXY": dead, "https_proxy": dead})
    assert res.returncode == 0
    r.wait_for(1)


def test_address_connects_elsewhere_but_verifies_the_host_name(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"host": "localhost", "address": "127.0.0.1"})
    assert send(ob).returncode == 0
    r.wait_for(1)
    bad = outbox(r, relay={"host": "wrong.example", "address": "127.0.0.1"})
    assert send(bad).returncode == 0
    assert "certificate verification failed" in bad.mailq().stdout.decode()


# -- TLS controls --------------------------------------------------------------

def relay_pin(ob):
    res = ob.run(["--check-relays"])
    line = [l for l in res.stdout.decode().splitlines() if "pin_sha256:" in l][0]
    return line.split()[-1]


def test_a_matching_pin_delivers_and_a_mismatch_keeps_the_mail(relay, outbox):
    r = relay()
    pin = relay_pin(outbox(r))
    good = outbox(r, relay={"pin_sha256": "sha256//" + pin})
    assert send(good).returncode == 0
    r.wait_for(1)
    wrong = "A" * 43 + "="
    bad = outbox(r, relay={"pin_sha256": wrong + " " + wrong.replace("A", "B")})
    assert send(bad).returncode == 0
    assert "does not match pin_sha256" in bad.mailq().stdout.decode()
    assert len(r.messages) == 1


def test_tls_min_version_13_still_verifies(relay, outbox):
    r = relay(cert="selfsigned")
    ob = outbox(r, relay={"tls_min_version": "1.3"})
    assert send(ob).returncode == 0
    assert r.messages == []
    assert "certificate verification failed" in ob.mailq().stdout.decode()


# -- password sources ----------------------------------------------------------

def test_password_env(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"password": None, "password_env": "RELAY_PASSWORD"})
    res = send(ob)
    assert res.returncode == 0
    assert "password_env: RELAY_PASSWORD is not set" in ob.mailq().stdout.decode()
    assert r.messages == []
    assert ob.run(["-q"], env={"RELAY_PASSWORD": "s3cret"}).returncode == 0
    assert r.wait_for(1)[0]["auth_user"] == "alice"


def test_auth_restricted_to_a_mechanism_the_relay_lacks(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"auth": "CRAM-MD5"})
    assert send(ob).returncode == 0
    assert "no allowed mechanism offered" in ob.mailq().stdout.decode()
    assert r.messages == []
    assert not any(c.upper().startswith("AUTH") for c in r.commands)


# -- sendmail --check-relays ---------------------------------------------------

def check(ob, env=None):
    res = ob.run(["--check-relays"], env=env)
    return res.returncode, res.stdout.decode()


def test_check_a_good_relay_reports_tls_certificate_and_auth(relay, outbox):
    r = relay()
    ob = outbox(r)
    # a delivery first: the session it leaves is not resumed by the check,
    # whose full handshake shows the certificate
    assert send(ob).returncode == 0
    code, out = check(ob)
    assert code == 0, out
    assert "[relay] 127.0.0.1 port %d (starttls)" % r.port in out
    assert "connected:    127.0.0.1 port %d" % r.port in out
    assert "tls:          TLSv1.3, " in out or "tls:          TLSv1.2, " in out
    assert "certificate:  CN = localhost" in out
    assert "issuer:       CN = outbox test CA" in out
    assert "expires:      " in out and "pin_sha256:   " in out
    assert "AUTH LOGIN PLAIN" in out
    assert "auth:         PLAIN as alice: accepted" in out
    assert out.rstrip().endswith("result:       ok")
    # the check sent no mail: only the delivery's one
    assert len(r.messages) == 1
    assert [c.upper()[:4] for c in r.commands].count("MAIL") == 1
    assert r.commands[-1].upper() == "QUIT"


@pytest.mark.parametrize("case, want_code, want", [
    ("refused", 69, "failed at connect: relay 127.0.0.1 port"),
    ("wrong-cert", 76, "failed at tls: relay 127.0.0.1 port"),
    ("pin", 76, "does not match pin_sha256"),
    ("password", 77, "failed at auth: relay 127.0.0.1 port"),
    ("no-auth", 77, "did not offer AUTH after TLS"),
    ("no-starttls", 76, "STARTTLS not offered"),
    ("no-secret", 78, "failed at credentials: password_env: NOPE is not set"),
])
def test_check_names_the_failing_step(relay, outbox, case, want_code, want):
    kwargs = {"wrong-cert": dict(cert="wrong"), "no-auth": dict(offer_auth=False),
              "no-starttls": dict(starttls=False)}.get(case, {})
    r = relay(**kwargs)
    changes = {"refused": {"port": free_port()},
               "pin": {"pin_sha256": "A" * 43 + "="},
               "password": {"password": "wrong"},
               "no-starttls": {"tls": "starttls"},
               "no-secret": {"password": None, "password_env": "NOPE"}}.get(case, {})
    code, out = check(outbox(r, relay=changes))
    assert code == want_code, out
    assert want in out
    assert r.messages == []
    if case == "password":
        assert "auth:         PLAIN as alice: refused" in out


@pytest.mark.parametrize("case", ["wrong-cert", "self-signed", "pin"])
def test_check_shows_the_certificate_a_tls_failure_came_from(relay, outbox, case):
    # what the relay presented is what the user needs to fix ca_file,
    # host or pin_sha256: shown even though verification failed
    good = check(outbox(relay()))[1]
    pin = re.search(r"pin_sha256:   (\S+)", good).group(1)
    r = relay(cert={"wrong-cert": "wrong", "self-signed": "selfsigned"}.get(case, "server"))
    code, out = check(outbox(r, relay={"pin_sha256": "A" * 43 + "="} if case == "pin" else {}))
    assert code == 76, out
    assert "connected:    127.0.0.1 port %d" % r.port in out
    subject = {"wrong-cert": "CN = wrong.example", "self-signed": "CN = localhost",
               "pin": "CN = localhost"}[case]
    assert "certificate:  %s" % subject in out
    assert re.search(r"pin_sha256:   [A-Za-z0-9+/]{43}=", out)
    if case == "pin":
        assert "pin_sha256:   %s" % pin in out
    assert "auth:         not attempted" in out
    assert r.messages == [] and not any(c.upper().startswith("AUTH") for c in r.commands)


def test_check_every_relay_and_exit_with_the_first_failure(relay, outbox, certs):
    good = relay()
    ob = outbox(good, **{"relay:down": section(good, certs, port=str(free_port())),
                         "relay:bad": section(good, certs, password="nope")})
    code, out = check(ob)
    assert code == 69
    assert out.count("result:       ok") == 1
    assert "[relay:down]" in out and "[relay:bad]" in out
    assert "failed at auth" in out


def test_check_without_a_relay(outbox):
    code, out = check(outbox(relay=None))
    assert code == 78 and "no relay configured" in out


def test_ca_path_replaces_the_trust_store(relay, outbox, certs, tmp_path):
    import shutil
    import subprocess
    cadir = tmp_path / "cas"
    cadir.mkdir()
    shutil.copy(certs["ca"], cadir / "test-ca.pem")
    subprocess.run(["openssl", "rehash", str(cadir)], check=True)
    r = relay()
    ob = outbox(r, relay={"ca_file": None, "ca_path": str(cadir)})
    assert send(ob).returncode == 0
    r.wait_for(1)
    empty = tmp_path / "none"
    empty.mkdir()
    bad = outbox(r, relay={"ca_file": None, "ca_path": str(empty)})
    assert send(bad).returncode == 0
    assert "certificate verification failed" in bad.mailq().stdout.decode()
    assert len(r.messages) == 1


# -- connections that the relay closes ----------------------------------------

def test_a_421_on_a_reused_connection_is_retried_on_a_fresh_one(relay, outbox):
    r = relay(close_after=2)
    ob = outbox(r, relay={"connections": "1"})
    queue_many(ob, 5)
    res = ob.run(["-q"])
    assert res.returncode == 0, res.stderr
    msgs = r.wait_for(5)
    assert len(msgs) == 5 and r.connections == 3
    assert ob.queue_files() == []
    assert "421" not in ob.mailq().stdout.decode()


def test_the_flush_counts_connections_at_the_relay(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"connections": "2"})
    queue_many(ob, 100)
    assert ob.run(["-q"], timeout=120).returncode == 0
    assert len(r.wait_for(100)) == 100
    assert r.max_concurrent <= 2 and r.connections == 2


# -- routing: IPv6, source address, SOCKS5 -------------------------------------

def test_ipv6_relay(relay, outbox):
    r = relay(host="::1")
    ob = outbox(r, relay={"ip_version": "6"})
    assert send(ob).returncode == 0, ob.mailq().stdout
    assert r.wait_for(1)[0]["peer"] == "::1"


def test_ip_version_4_cannot_reach_an_ipv6_only_relay(relay, outbox):
    r = relay(host="::1")
    ob = outbox(r, relay={"host": "localhost", "ip_version": "4"})
    assert send(ob).returncode == 0
    assert r.messages == [] and len(ob.queue_files()) == 2


def test_source_address(relay, outbox):
    r = relay()
    ob = outbox(r, relay={"source": "127.0.0.2"})
    assert send(ob).returncode == 0, ob.mailq().stdout
    assert r.wait_for(1)[0]["peer"] == "127.0.0.2"


def test_socks5_proxy(relay, outbox):
    from socks import Socks5
    r = relay()
    with Socks5() as proxy:
        ob = outbox(r, relay={"host": "localhost",
                              "proxy": "socks5h://127.0.0.1:%d" % proxy.port})
        assert send(ob).returncode == 0, ob.mailq().stdout
        r.wait_for(1)
        assert proxy.targets == [("localhost", r.port)]
        direct = outbox(r, relay={"proxy": "socks5://127.0.0.1:%d" % free_port()})
        assert send(direct).returncode == 0
        assert "cannot connect" in direct.mailq().stdout.decode()
        assert len(r.messages) == 1


# -- authentication mechanisms and client certificates -------------------------

@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_each_password_mechanism(relay, outbox, mech):
    r = relay(mechanisms=[mech])
    ob = outbox(r, relay={"auth": mech})
    assert send(ob).returncode == 0, ob.mailq().stdout
    m = r.wait_for(1)[0]
    assert (m["auth_mech"], m["auth_user"]) == (mech, "alice")


def test_the_default_never_picks_cram_md5_or_more_than_allowed(relay, outbox):
    r = relay(mechanisms=["CRAM-MD5", "PLAIN"])
    ob = outbox(r)
    assert send(ob).returncode == 0
    assert r.wait_for(1)[0]["auth_mech"] == "PLAIN"


def test_external_with_a_client_certificate(relay, outbox, certs):
    r = relay(mechanisms=["EXTERNAL"], client_cert="required")
    ob = outbox(r, relay={"user": None, "password": None, "auth": "EXTERNAL",
                          "client_cert": certs["client"],
                          "client_key": certs["client_key"]})
    assert send(ob).returncode == 0, ob.mailq().stdout
    m = r.wait_for(1)[0]
    assert (m["auth_mech"], m["client_cn"]) == ("EXTERNAL", "alice")


def test_a_required_client_certificate(relay, outbox, certs):
    r = relay(client_cert="required")
    without = outbox(r)
    assert send(without).returncode == 0
    assert r.messages == []
    assert "nothing was sent" in without.mailq().stdout.decode()
    ob = outbox(r, relay={"client_cert": certs["client"], "client_key": certs["client_key"]})
    assert ob.run(["-q"]).returncode == 0
    assert r.wait_for(1)[0]["client_cn"] == "alice"


# -- parallel flush: limits per relay, bounces, stopping ----------------------

def test_failover_respects_the_next_relays_connections(relay, outbox, certs):
    backup = relay()
    ob = outbox(backup, relay={"port": free_port(), "connections": "4"},
                **{"relay:backup": section(backup, certs, connections="1")})
    queue_many(ob, 200)
    assert ob.run(["-q"], timeout=120).returncode == 0
    msgs = backup.wait_for(200)
    assert len({m["data"] for m in msgs}) == 200
    assert backup.max_concurrent == 1
    assert ob.queue_files() == []


def test_bounces_queued_by_workers_are_sent_once(relay, outbox, certs):
    r = relay(rcpt_rules={"bad@example.org": "550 5.1.1 no such user"})
    ob = outbox(r, relay={"senders": "*@example.com", "connections": "1"},
                **{"relay:b": section(r, certs, connections="4")})
    for i in range(80):
        assert ob.run(["-odq", "-i", "bad@example.org"],
                      input=b"Subject: b %d\n\nbody\n" % i).returncode == 0
    res = ob.run(["-q"], timeout=120)
    assert res.returncode == 0, res.stderr
    bounces = [m for m in r.wait_for(80) if m["mail_from"] == ""]
    assert len(bounces) == 80
    assert len({m["data"] for m in bounces}) == 80
    # each original is kept as failed, reported once
    assert ob.run(["-q"]).returncode == 0
    assert len([m for m in r.messages if m["mail_from"] == ""]) == 80


def test_sigterm_stops_the_runner_and_its_workers(relay, outbox):
    import signal
    import subprocess
    r = relay()
    ob = outbox(r, relay={"max_rate": "20", "connections": "4"})
    queue_many(ob, 200)
    p = subprocess.Popen([ob.binary, "-C", ob.conf_path, "-q1h"], env=ob.env(),
                         stderr=subprocess.DEVNULL)
    r.wait_for(10)
    p.send_signal(signal.SIGTERM)
    assert p.wait(5) == 0
    time.sleep(0.5)                      # a worker still sending would show here
    sent = len(r.messages)
    assert 10 <= sent < 150
    queued = [f for f in ob.queue_files() if not f.endswith(".st")]
    assert len(queued) + sent == 200     # nothing lost, nothing sent twice
    assert len({m["data"] for m in r.messages}) == sent


# -- OpenSSL is loaded on first use ------------------------------------------

def test_without_libssl_the_exit_is_72_and_the_mail_stays_queued(relay, outbox, tmp_path):
    # the warm-up thread fails to load it too: the first real use says
    # so, after the commit, and nothing reaches the relay
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "libssl.so.3").write_bytes(b"not a shared library\n")
    r = relay()
    ob = outbox(r)
    res = send(ob, env={"LD_LIBRARY_PATH": str(libdir)})
    assert res.returncode == 72, res.stderr
    assert b"cannot load libssl.so.3" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert r.messages == [] and len(ob.queue_files()) == 1
    # queueing needs no OpenSSL; the flush with it delivers both
    assert send(ob, "-odq", "bob@example.org",
                env={"LD_LIBRARY_PATH": str(libdir)}).returncode == 0
    assert ob.run(["-q"]).returncode == 0
    assert len(r.wait_for(2)) == 2 and ob.queue_files() == []
