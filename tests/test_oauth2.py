"""Built-in OAuth2 (issue 5): outbox trades the refresh token for access
tokens at a local HTTPS token endpoint (tests/oauth.py) and logs in with
XOAUTH2 or OAUTHBEARER to a relay that checks the bearer token against
what the endpoint issued."""
import os

import pytest

from oauth import TokenServer

MSG = b"Subject: oauth\n\nbody\n"
USER = "alice@example.com"


@pytest.fixture
def endpoint(certs):
    with TokenServer(certs["dir"], client_id="outbox-client", client_secret="cs-1",
                     refresh_token="rt-0") as ts:
        yield ts


def oauth_outbox(outbox, r, certs, tmp_path, ts, token="rt-0", **extra):
    rt = tmp_path / "refresh"
    rt.write_text(token + "\n")
    os.chmod(rt, 0o600)
    keys = {"user": USER, "password": None,
            "oauth2_token_url": ts.url, "oauth2_client_id": "outbox-client",
            "oauth2_client_secret": "cs-1", "oauth2_refresh_token_file": str(rt),
            "oauth2_ca_file": certs["ca"]}
    keys.update(extra)
    return outbox(r, relay=keys), rt


def bearer_relay(relay, ts, mechanisms=("XOAUTH2", "OAUTHBEARER")):
    return relay(mechanisms=list(mechanisms), users={USER: "unused"},
                 tokens=ts.valid_token)


def send(ob):
    return ob.run(["-i", "bob@example.org"], input=MSG)


def refreshes(ts):
    return [q for q in ts.requests if q.get("grant_type") == "refresh_token"]


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_a_token_is_fetched_then_reused_from_the_cache(relay, outbox, certs, tmp_path,
                                                       endpoint, mech):
    r = bearer_relay(relay, endpoint, [mech])
    ob, _ = oauth_outbox(outbox, r, certs, tmp_path, endpoint)
    assert send(ob).returncode == 0
    assert send(ob).returncode == 0
    msgs = r.wait_for(2)
    assert [m["auth_mech"] for m in msgs] == [mech, mech]
    assert len(refreshes(endpoint)) == 1
    q = endpoint.requests[0]
    assert (q["client_id"], q["client_secret"], q["refresh_token"]) == \
        ("outbox-client", "cs-1", "rt-0")
    cache = os.path.join(ob.spool, "oauth2-relay")
    assert os.stat(cache).st_mode & 0o777 == 0o600
    # no secret in anything outbox printed
    out = ob.mailq().stdout + ob.run(["--check-relays"]).stdout
    assert b"cs-1" not in out and b"rt-0" not in out


def test_a_token_near_expiry_is_refreshed(relay, outbox, certs, tmp_path, endpoint):
    endpoint.expires_in = 30        # inside outbox's one-minute margin
    r = bearer_relay(relay, endpoint)
    ob, _ = oauth_outbox(outbox, r, certs, tmp_path, endpoint)
    for _ in range(3):
        assert send(ob).returncode == 0
    r.wait_for(3)
    assert len(refreshes(endpoint)) == 3


def test_a_rotated_refresh_token_is_kept(relay, outbox, certs, tmp_path, endpoint):
    endpoint.rotate = True
    endpoint.expires_in = 30
    r = bearer_relay(relay, endpoint)
    ob, rt = oauth_outbox(outbox, r, certs, tmp_path, endpoint)
    for _ in range(3):
        assert send(ob).returncode == 0, ob.mailq().stdout
    r.wait_for(3)
    used = [q["refresh_token"] for q in refreshes(endpoint)]
    assert used[0] == "rt-0" and len(set(used)) == 3      # each rotation used
    assert rt.read_text() == "rt-0\n"                     # the user's file untouched


def test_a_token_the_relay_refuses_is_refreshed_once(relay, outbox, certs, tmp_path,
                                                     endpoint):
    refused = []

    def check(user, token):
        if not refused:
            refused.append(token)
            return False
        return endpoint.valid_token(user, token)

    r = relay(mechanisms=["XOAUTH2"], users={USER: "unused"}, tokens=check)
    ob, _ = oauth_outbox(outbox, r, certs, tmp_path, endpoint)
    assert send(ob).returncode == 0
    assert len(r.wait_for(1)) == 1
    assert len(refreshes(endpoint)) == 2


def test_invalid_grant_holds_the_mail_until_a_new_refresh_token(relay, outbox, certs,
                                                                tmp_path, endpoint):
    endpoint.invalid_grant = True
    r = bearer_relay(relay, endpoint)
    ob, rt = oauth_outbox(outbox, r, certs, tmp_path, endpoint,
                          **{})
    res = send(ob)
    assert res.returncode == 0
    assert b"authorise again" in res.stderr
    q = ob.mailq().stdout.decode()
    assert "invalid_grant" in q and str(rt) in q
    assert r.connections == 0
    # no bounce, no expiry, and no more token requests while the file is the same
    for offset in ("0", str(30 * 86400)):
        assert ob.run(["-q"], env={"OUTBOX_TIME_OFFSET": offset}).returncode == 75
    assert len(refreshes(endpoint)) == 1
    assert r.messages == []
    # the user authorises again
    endpoint.invalid_grant = False
    endpoint.refresh_token = "rt-new"
    rt.write_text("rt-new\n")
    assert ob.run(["-q"]).returncode == 0
    assert len(r.wait_for(1)) == 1
    assert refreshes(endpoint)[-1]["refresh_token"] == "rt-new"


def test_an_endpoint_down_is_temporary(relay, outbox, certs, tmp_path, endpoint):
    endpoint.fail_status = 503
    r = bearer_relay(relay, endpoint)
    ob, _ = oauth_outbox(outbox, r, certs, tmp_path, endpoint)
    assert send(ob).returncode == 0
    assert "HTTP 503" in ob.mailq().stdout.decode()
    endpoint.fail_status = None
    assert ob.run(["-q"]).returncode == 0
    r.wait_for(1)


def test_check_relays_shows_the_oauth_login(relay, outbox, certs, tmp_path, endpoint):
    r = bearer_relay(relay, endpoint, ["XOAUTH2"])
    ob, _ = oauth_outbox(outbox, r, certs, tmp_path, endpoint)
    res = ob.run(["--check-relays"])
    assert res.returncode == 0, res.stdout
    assert b"auth:         XOAUTH2 as alice@example.com: accepted" in res.stdout


def test_a_bearer_token_from_password_command(relay, outbox):
    """msmtp-style: a helper prints the access token, outbox sends it."""
    r = relay(mechanisms=["OAUTHBEARER"], users={USER: "unused"},
              tokens={USER: "at-from-helper"})
    ob = outbox(r, relay={"user": USER, "password": None, "auth": "OAUTHBEARER",
                          "password_command": "echo at-from-helper"})
    assert ob.run(["-i", "bob@example.org"], input=MSG).returncode == 0
    assert r.wait_for(1)[0]["auth_mech"] == "OAUTHBEARER"
