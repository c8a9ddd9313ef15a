"""Throwaway X.509 material for the integration tests.

make_certs(dirpath) uses the openssl command-line tool to create, in
dirpath:

    ca.pem / ca.key                  a test CA (the client's ca_file)
    server.pem / server.key          signed by the CA, valid for
                                     DNS:localhost, IP:127.0.0.1, IP:::1
    wrong.pem / wrong.key            signed by the CA, valid only for
                                     DNS:wrong.example (name mismatch)
    selfsigned.pem / selfsigned.key  self-signed, valid for localhost,
                                     127.0.0.1 and ::1, NOT signed by
                                     the CA (untrusted issuer)
    client.pem / client.key          a TLS client certificate signed by
                                     the CA: CN=alice, extendedKeyUsage
                                     clientAuth, subjectAltName
                                     email:alice@example.com and
                                     DNS:client.test (for relay.Relay's
                                     client_cert= and AUTH EXTERNAL)
    expired.pem / expired.key        like server.pem (signed by the CA,
                                     localhost, 127.0.0.1, ::1) but valid
                                     only from 2020-01-01 to 2020-01-02:
                                     expired (made with "openssl ca
                                     -startdate/-enddate", as OpenSSL 3.0
                                     has no way to backdate with x509 or
                                     req)

All keys are RSA-2048, all signatures SHA-256, every certificate but
expired.pem is valid for 2 days from now.  A private openssl config is
used, so the result does not depend on the system's openssl.cnf.  Files
that already exist are reused, so calling make_certs() twice on one
directory is cheap; a directory made before a kind of certificate was
added gets just the missing pairs, signed by its existing CA (only when
the CA itself is missing is everything made anew).

spki_sha256(pem_path) returns the base64 of the SHA-256 of a
certificate's DER SubjectPublicKeyInfo: the public key pin that curl's
CURLOPT_PINNEDPUBLICKEY takes after "sha256//", e.g.
    "sha256//" + spki_sha256(paths["server"])

Run as a script to (re)create the files in a directory:
    /usr/bin/python3 tests/certs.py DIR
"""

import base64
import hashlib
import os
import shutil
import subprocess
import sys

DAYS = "2"

# One minimal config for every openssl invocation.  Each certificate
# kind has its own extensions section, chosen with -extensions.  The
# extensions follow what strict verifiers (X509_V_FLAG_X509_STRICT)
# want: key usage on the CA, subject/authority key identifiers.
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[v3_wrong]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:wrong.example

[v3_self]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = email:alice@example.com, DNS:client.test

# "openssl ca" for expired.pem: its database lives in expired-ca/
[ca_expired]
database = expired-ca/index.txt
new_certs_dir = expired-ca
serial = expired-ca/serial
default_md = sha256
policy = policy_cn
unique_subject = no
email_in_dn = no

[policy_cn]
commonName = supplied
"""

# name -> (subject, extensions section, signed by the CA?)
_LEAVES = {
    "server": ("/CN=localhost", "v3_server", True),
    "wrong": ("/CN=wrong.example", "v3_wrong", True),
    "selfsigned": ("/CN=localhost", "v3_self", False),
    "client": ("/CN=alice", "v3_client", True),
    "expired": ("/CN=localhost", "v3_server", True),
}

# validity of expired.pem (openssl ca -startdate/-enddate)
EXPIRED_START, EXPIRED_END = "20200101000000Z", "20200102000000Z"


def _openssl(*args, cwd):
    """Run one openssl command; raise with its stderr if it fails."""
    return _openssl_io(*args, cwd=cwd)


def _openssl_io(*args, cwd=None, input=None):
    """Run one openssl command with input (bytes) on stdin; return its
    stdout (bytes); raise with its stderr if it fails."""
    proc = subprocess.run(["openssl", *args], cwd=cwd, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed: %s"
                           % (" ".join(args), proc.stderr.decode(errors="replace")))
    return proc.stdout


def _paths(dirpath):
    """The dict make_certs() returns: 'ca', 'ca_key', 'server', ..."""
    d = {}
    for name in ("ca", *_LEAVES):
        d[name] = os.path.join(dirpath, name + ".pem")
        d[name + "_key"] = os.path.join(dirpath, name + ".key")
    return d


def _sign_expired(dirpath, cnf, paths, csr, section, pem):
    """Have the CA sign csr with a validity that ended long ago."""
    db = os.path.join(dirpath, "expired-ca")
    shutil.rmtree(db, ignore_errors=True)
    os.mkdir(db)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write(os.urandom(8).hex() + "\n")
    _openssl("ca", "-batch", "-config", cnf, "-name", "ca_expired",
             "-cert", paths["ca"], "-keyfile", paths["ca_key"], "-in", csr,
             "-startdate", EXPIRED_START, "-enddate", EXPIRED_END,
             "-extfile", cnf, "-extensions", section, "-notext",
             "-out", pem, cwd=dirpath)
    shutil.rmtree(db)


def make_certs(dirpath):
    """Create (or reuse) the test certificates in dirpath.

    Returns a dict of absolute paths:
        ca, ca_key, server, server_key, wrong, wrong_key,
        selfsigned, selfsigned_key, client, client_key, expired, expired_key
    plus 'dir' (the directory itself).
    """
    dirpath = os.path.abspath(str(dirpath))
    os.makedirs(dirpath, exist_ok=True)
    paths = _paths(dirpath)
    paths_out = dict(paths, dir=dirpath)
    if all(os.path.exists(p) for p in paths.values()):
        return paths_out

    cnf = os.path.join(dirpath, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(_OPENSSL_CNF)

    # The CA: self-signed, with CA extensions.  Kept when it exists, so
    # the certificates already made with it stay valid; a new CA means
    # every leaf is made again.
    new_ca = not (os.path.exists(paths["ca"]) and os.path.exists(paths["ca_key"]))
    if new_ca:
        _openssl("req", "-config", cnf, "-x509", "-newkey", "rsa:2048",
                 "-nodes", "-sha256", "-days", DAYS,
                 "-subj", "/CN=outbox test CA", "-extensions", "v3_ca",
                 "-keyout", paths["ca_key"], "-out", paths["ca"], cwd=dirpath)

    for name, (subject, section, by_ca) in _LEAVES.items():
        key, pem = paths[name + "_key"], paths[name]
        if not new_ca and os.path.exists(key) and os.path.exists(pem):
            continue
        if by_ca:
            # Key + CSR, then have the CA sign it with the extensions.
            csr = os.path.join(dirpath, name + ".csr")
            _openssl("req", "-config", cnf, "-new", "-newkey", "rsa:2048",
                     "-nodes", "-subj", subject, "-keyout", key, "-out", csr,
                     cwd=dirpath)
            serial = "0x" + os.urandom(8).hex()
            if name == "expired":
                _sign_expired(dirpath, cnf, paths, csr, section, pem)
            else:
                _openssl("x509", "-req", "-in", csr, "-CA", paths["ca"],
                         "-CAkey", paths["ca_key"], "-set_serial", serial,
                         "-sha256", "-days", DAYS, "-extfile", cnf,
                         "-extensions", section, "-out", pem, cwd=dirpath)
            os.unlink(csr)
        else:
            _openssl("req", "-config", cnf, "-x509", "-newkey", "rsa:2048",
                     "-nodes", "-sha256", "-days", DAYS, "-subj", subject,
                     "-extensions", section, "-keyout", key, "-out", pem,
                     cwd=dirpath)

    for name in ("ca", *_LEAVES):
        os.chmod(paths[name + "_key"], 0o600)
    return paths_out


def spki_sha256(pem_path):
    """base64(SHA-256(DER SubjectPublicKeyInfo)) of the certificate in
    pem_path: what follows "sha256//" in curl's CURLOPT_PINNEDPUBLICKEY
    (and in an HPKP pin)."""
    pubkey_pem = _openssl_io("x509", "-in", os.fspath(pem_path), "-pubkey", "-noout")
    der = _openssl_io("pkey", "-pubin", "-outform", "der", input=pubkey_pem)
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: certs.py DIR")
    for k, v in sorted(make_certs(sys.argv[1]).items()):
        print(k, v)
