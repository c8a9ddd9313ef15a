"""DKIM signing at submission, verified by an independent implementation
(Debian's python3-dkim) with the DNS answered from `sendmail --dkim-record`.
"""
import os
import re
import subprocess

import dkim
import pytest


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkim")
    paths = {"rsa": str(d / "rsa.pem"), "ed25519": str(d / "ed.pem")}
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", paths["rsa"]], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out",
                    paths["ed25519"]], check=True, capture_output=True)
    # the raw base64 seed format that dknewkey writes
    subprocess.run(["dknewkey", "--ktype", "ed25519", str(d / "seed")], check=True,
                   capture_output=True, cwd=str(d))
    paths["seed"] = str(d / "seed.key")
    for p in paths.values():
        os.chmod(p, 0o600)
    return paths


def dns_from_record(ob):
    """{b'selector._domainkey.domain.': b'v=DKIM1; ...'} from --dkim-record."""
    res = ob.run(["--dkim-record"])
    assert res.returncode == 0, res.stderr
    records = {}
    for block in re.findall(r"^(\S+) IN TXT \((.*?)\)$", res.stdout.decode(), re.M | re.S):
        name, body = block
        records[name.encode()] = "".join(re.findall(r'"([^"]*)"', body)).encode()
    return records


def verify(ob, data):
    records = dns_from_record(ob)
    return dkim.verify(data, dnsfunc=lambda name, timeout=5: records.get(name))


def dkim_outbox(outbox, r, keys, alg, canon="relaxed/relaxed", **extra):
    sect = {"domain": "example.com", "selector": "s1", "key_file": keys[alg],
            "canonicalization": canon}
    sect.update(extra)
    return outbox(r, dkim=sect)


MESSAGES = {
    "plain": b"Subject: hi\nTo: bob@example.org\n\nhello\n",
    "trailing-whitespace": b"Subject: ws \t\nTo: bob@example.org\n\nline with blanks  \t\n"
                           b"  indented\n\n\n\n",
    "folded-headers": b"Subject: a folded\n\tsubject line\nTo: Bob\n  <bob@example.org>\n\nx\n",
    "empty-body": b"Subject: empty\nTo: bob@example.org\n\n",
    "no-final-newline": b"Subject: nn\nTo: bob@example.org\n\nlast line",
    "8bit": "Subject: Grüße\nTo: bob@example.org\n\nKöln ☃\n".encode(),
    "long-line-reencoded": b"Subject: long\nTo: bob@example.org\n\n" + b"w " * 800 + b"\n",
    "crlf": b"Subject: crlf\r\nTo: bob@example.org\r\n\r\nbody\r\n\r\n",
    "dots": b"Subject: dots\nTo: bob@example.org\n\n.\n..\n.leading\n",
}


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple",
                                   "relaxed/simple", "simple/relaxed"])
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_signature_verifies(relay, outbox, keys, alg, canon, name):
    r = relay()
    ob = dkim_outbox(outbox, r, keys, alg, canon)
    res = ob.run(["-i", "bob@example.org"], input=MESSAGES[name])
    assert res.returncode == 0, res.stderr
    data = r.wait_for(1)[0]["data"]
    assert data.startswith(b"DKIM-Signature: v=1; a=%s-sha256; c=%s;"
                           % (alg.encode(), canon.encode()))
    assert verify(ob, data)
    if name == "long-line-reencoded":
        assert b"Content-Transfer-Encoding: quoted-printable" in data


def test_rsa_and_ed25519_side_by_side(relay, outbox, keys):
    r = relay()
    ob = outbox(r, **{"dkim": {"domain": "example.com", "selector": "rsa",
                               "key_file": keys["rsa"]},
                      "dkim:ed": {"domain": "example.com", "selector": "ed",
                                  "key_file": keys["seed"]}})
    assert ob.run(["-i", "bob@example.org"], input=MESSAGES["plain"]).returncode == 0
    data = r.wait_for(1)[0]["data"]
    assert data.count(b"DKIM-Signature:") == 2
    records = dns_from_record(ob)
    assert set(records) == {b"rsa._domainkey.example.com.", b"ed._domainkey.example.com."}
    assert b"k=ed25519" in records[b"ed._domainkey.example.com."]
    for i in range(2):          # python3-dkim verifies the i-th signature
        assert dkim.DKIM(data).verify(idx=i, dnsfunc=lambda n, timeout=5: records.get(n))


def test_from_is_signed_twice(relay, outbox, keys):
    r = relay()
    ob = dkim_outbox(outbox, r, keys, "rsa")
    ob.run(["-i", "bob@example.org"], input=MESSAGES["plain"])
    data = r.wait_for(1)[0]["data"]
    h = re.search(rb"h=([^;]*);", data).group(1).replace(b"\r\n\t", b"")
    assert h.split(b":").count(b"from") == 2
    # a second From added later breaks the signature
    assert not verify(ob, b"From: evil@example.net\r\n" + data)


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_tampered_body_or_header_fails(relay, outbox, keys, alg):
    r = relay()
    ob = dkim_outbox(outbox, r, keys, alg)
    ob.run(["-i", "bob@example.org"], input=MESSAGES["plain"])
    data = r.wait_for(1)[0]["data"]
    assert verify(ob, data)
    assert not verify(ob, data.replace(b"hello", b"HELLO"))
    assert not verify(ob, data.replace(b"Subject: hi", b"Subject: ho"))


def test_bs_messages_are_signed_the_same_way(relay, outbox, keys):
    r = relay()
    ob = dkim_outbox(outbox, r, keys, "ed25519")
    res = ob.run(["-bs"], input=b"EHLO c\r\nMAIL FROM:<app@example.com>\r\n"
                 b"RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: bs\r\n\r\n..x\r\n.\r\nQUIT\r\n")
    assert b"250 2.0.0 Ok: queued" in res.stdout
    assert verify(ob, r.wait_for(1)[0]["data"])


def test_retry_sends_the_same_signed_bytes(relay, outbox, keys):
    r = relay(rcpt_rules={"bob@example.org": "451 4.3.0 later"})
    ob = dkim_outbox(outbox, r, keys, "rsa")
    ob.run(["-i", "bob@example.org"], input=MESSAGES["plain"])
    r.rcpt_rules.clear()
    assert ob.run(["-q"]).returncode == 0
    assert verify(ob, r.wait_for(1)[0]["data"])


def test_other_sender_domains_are_not_signed(relay, outbox, keys):
    r = relay()
    ob = dkim_outbox(outbox, r, keys, "rsa", sender_domains="example.com")
    ob.run(["-i", "bob@example.org"], input=b"From: x@other.example\n\nx\n")
    assert b"DKIM-Signature" not in r.wait_for(1)[0]["data"]


def test_subdomain_is_signed_by_default(relay, outbox, keys):
    r = relay()
    ob = dkim_outbox(outbox, r, keys, "rsa")
    ob.run(["-i", "bob@example.org"], input=b"From: x@mail.example.com\n\nx\n")
    data = r.wait_for(1)[0]["data"]
    assert b"DKIM-Signature" in data and verify(ob, data)


@pytest.mark.parametrize("problem", ["world-readable", "missing", "small-rsa"])
def test_bad_key_is_a_configuration_error_not_an_unsigned_send(relay, outbox, keys,
                                                                tmp_path, problem):
    r = relay()
    path = str(tmp_path / "key.pem")
    if problem == "world-readable":
        open(path, "wb").write(open(keys["rsa"], "rb").read())
        os.chmod(path, 0o644)
    elif problem == "small-rsa":
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:1024", "-out", path], check=True, capture_output=True)
        os.chmod(path, 0o600)
    ob = outbox(r, dkim={"domain": "example.com", "selector": "s1", "key_file": path})
    res = ob.run(["-i", "bob@example.org"], input=MESSAGES["plain"])
    assert res.returncode == 78
    assert res.stderr.count(b"\n") == 1 and b"key_file" in res.stderr
    assert r.messages == [] and ob.queue_files() == []


def test_dkim_section_needs_its_keys(outbox, tmp_path):
    ob = outbox(dkim={"domain": "example.com"})
    res = ob.run(["-i", "bob@example.org"], input=b"\nx\n")
    assert res.returncode == 78 and b"[dkim] needs selector" in res.stderr


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_signature_survives_a_real_postfix_relay(postfix, outbox, keys, alg):
    ob = outbox(postfix, relay={"user": None, "password": None},
                dkim={"domain": "example.com", "selector": "s1", "key_file": keys[alg]})
    res = ob.run(["-i", "bob@example.org"],
                 input="Subject: through postfix\nTo: bob@example.org\n\nGrüße  \n\n".encode())
    assert res.returncode == 0, res.stderr
    assert ob.queue_files() == []
    (data,) = postfix.messages(1)
    assert b"Received: from " in data          # it really went through Postfix
    assert b"DKIM-Signature: v=1; a=%s-sha256" % alg.encode() in data
    assert verify(ob, data)
