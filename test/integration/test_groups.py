# SPDX-License-Identifier: BSD-2-Clause
"""Enrolment groups: a device whose KpmID matches a group pattern bootstraps
with Kpm = HMAC-SHA-256(group secret, KpmID), computed here with Python hmac
and handed to openssl s_client. Per-member disable, the individual record
winning over the group, and the group's targets on the fetch path."""

import base64
import re
import sqlite3
import time

import pytest

import harness
import rspf_util as u
from rspf_util import mefd  # noqa: F401  (the shared daemon, rate limits lifted)
from conftest import new_psk

LABEL = harness.BOOTSTRAP_LABEL
DOMAIN = "factory-7.example.com"
MAF = "maf.example.com"
SUID = 21


@pytest.fixture(scope="module")
def group(mefd):
    secret = bytes.fromhex(u.rand_hex(32))
    mefd.ctl("group", "add", "factory-7", "--pattern", "*@" + DOMAIN, "--secret-hex",
             secret.hex(), "--enrolee-pattern", "{local}", "--target", "%s:%d" % (MAF, SUID),
             "--expiry", "1h")
    return secret


def kpm(secret, kpm_id):
    return u.group_kpm(secret, kpm_id).hex()


def handshake(d, kpm_id, key_hex, listener="coap", proto="dtls1_2", cipher=None):
    kw = {"cipher": cipher} if cipher else {}
    return harness.s_client(d.ports[listener], proto, psk_identity=kpm_id, psk=key_hex,
                            keymatexport=LABEL, **kw)


def one_new_ke(d, before, client_id):
    got = u.wait_new_kes(d, before, client=client_id)
    assert len(got) == 1, "want one new Ke of %s, got %r\n%s" % (client_id, got, d.log()[-2000:])
    return got[0]


@pytest.mark.parametrize("listener,proto,cipher", [
    ("coap", "dtls1_2", "PSK-AES128-CCM8"),
    ("https_psk", "tls1_2", "PSK-AES128-CBC-SHA256"),
    ("coap", "tls1_2", "PSK-AES128-CBC-SHA256"),
])
def test_group_member_bootstraps(mefd, group, listener, proto, cipher):
    kpm_id = "dev-%s@%s" % (u.rand_hex(3), DOMAIN)
    before = u.keids(mefd)
    r = handshake(mefd, kpm_id, kpm(group, kpm_id), listener, proto, cipher)
    assert r.ok, r.err[-1500:] + mefd.log()[-1500:]
    k = one_new_ke(mefd, before, kpm_id)
    ekm = bytes.fromhex(r.keymat)
    assert k["keID"] == u.keid_of(ekm, harness.FQDN)
    assert k["ke"] == u.ke_of(ekm).hex()
    assert k["enroleeID"] == kpm_id.split("@")[0]          # --enrolee-pattern {local}
    created, expires = u.parse_stamp(k["created"]), u.parse_stamp(k["expirationTime"])
    assert abs(expires - created - 3600) <= 2


def test_non_member_and_wrong_key_refused(mefd, group):
    before = u.ke_list(mefd, secrets=True)
    # a KpmID outside the pattern, with the key the group would give it
    outsider = "dev-001@factory-8.example.com"
    assert not handshake(mefd, outsider, kpm(group, outsider)).ok
    # a member KpmID with the key of another member
    a, b = "dev-a1@" + DOMAIN, "dev-b2@" + DOMAIN
    assert not handshake(mefd, a, kpm(group, b), "https_psk", "tls1_2").ok
    time.sleep(0.3)
    assert u.ke_list(mefd, secrets=True) == before
    log = mefd.log().lower()
    assert group.hex() not in log and kpm(group, a) not in log


def test_member_disable(mefd, group):
    dev1, dev2 = "dev-001@" + DOMAIN, "dev-002@" + DOMAIN
    assert handshake(mefd, dev1, kpm(group, dev1)).ok
    mefd.ctl("client", "disable", dev1)
    before = u.ke_list(mefd, secrets=True)
    mark = u.log_mark(mefd)
    for listener, proto in (("coap", "dtls1_2"), ("https_psk", "tls1_2"), ("coap", "tls1_2")):
        assert not handshake(mefd, dev1, kpm(group, dev1), listener, proto).ok, listener
    time.sleep(0.3)
    assert u.ke_list(mefd, secrets=True) == before
    assert "disabled" in u.log_since(mefd, mark)
    # the rest of the group is unaffected
    b2 = u.keids(mefd)
    assert handshake(mefd, dev2, kpm(group, dev2)).ok
    one_new_ke(mefd, b2, dev2)
    mefd.ctl("client", "enable", dev1)
    b3 = u.keids(mefd)
    assert handshake(mefd, dev1, kpm(group, dev1), "https_psk", "tls1_2").ok
    one_new_ke(mefd, b3, dev1)


def test_individual_record_wins(mefd, group):
    """A device with both a group match and an individual record: only the
    individual PSK opens the door."""
    kpm_id = "dev-009@" + DOMAIN
    _, own = new_psk()
    mefd.add_psk_client("dev-009-individual", kpm_id, own)
    before = u.ke_list(mefd, secrets=True)
    for listener, proto in (("coap", "dtls1_2"), ("https_psk", "tls1_2")):
        assert not handshake(mefd, kpm_id, kpm(group, kpm_id), listener, proto).ok, listener
    time.sleep(0.3)
    assert u.ke_list(mefd, secrets=True) == before
    b = u.keids(mefd)
    r = handshake(mefd, kpm_id, own, "https_psk", "tls1_2")
    assert r.ok
    k = one_new_ke(mefd, b, "dev-009-individual")
    assert k["keID"] == u.keid_of(bytes.fromhex(r.keymat), harness.FQDN)


def test_group_targets_fetch(mefd, group):
    """The group's --target lets maf.example.com fetch a member's key."""
    kpm_id = "dev-%s@%s" % (u.rand_hex(3), DOMAIN)
    r = handshake(mefd, kpm_id, kpm(group, kpm_id))
    assert r.ok
    ekm = bytes.fromhex(r.keymat)
    keid = u.keid_of(ekm, harness.FQDN)
    time.sleep(0.2)
    rec = [k for k in u.ke_list(mefd, client=kpm_id) if k["keID"] == keid]
    assert len(rec) == 1
    e = mefd.enrolees
    path = "/fetchCredentials/%s/%d" % (keid, SUID)
    resp = harness.https_s_client(mefd.ports["https_psk"], path=path,
                                  headers={"X-M2M-Origin": MAF},
                                  psk_identity="maf@mef.example.com", psk=e.maf_hex)
    assert resp.status == 200 and resp.rsc == 2000, resp
    import json
    j = json.loads(resp.body)
    assert j["status"] is True
    assert base64.b64decode(j["credential"]) == u.usage_constrained(u.ke_of(ekm), SUID, MAF)
    assert j["enroleeID"] == kpm_id.split("@")[0]
    assert j["lifetime"] == rec[0]["expirationTime"]
    # over CoAP too
    c = u.coap_raw_get(mefd.ports["coap"], path + "?kdf=km", "dtls1_2", MAF,
                       psk_identity="maf@mef.example.com", psk=e.maf_hex)
    assert c.status == 205 and c.rsc == 2000, c
    assert base64.b64decode(c.json()["credential"]) == u.km(u.ke_of(ekm), MAF)
    # a SUID the group does not grant
    resp = harness.https_s_client(mefd.ports["https_psk"], path=path[:-2] + "22",
                                  headers={"X-M2M-Origin": MAF},
                                  psk_identity="maf@mef.example.com", psk=e.maf_hex)
    assert resp.status == 403 and resp.rsc == 4103, resp


def store_sql(d, sql):
    """An operator's own UPDATE on the store (sqlite3 shell or psql): no
    mefctl verb disables a group, but the daemon must follow that too."""
    url = re.search(r"^url = (\S+)", d.conf.read_text(), re.M)
    if url:
        import pg_util
        pg_util.session_server().psql(sql, db=url.group(1).rsplit("/", 1)[1].split("?")[0])
        return
    con = sqlite3.connect(str(d.db), timeout=10)
    with con:
        con.execute(sql)
    con.close()


def test_group_changes_seen_at_next_handshake(mefd):
    """mefd keeps the groups in memory (docs/performance.md); every change
    another process commits must still decide the very next handshake: a new
    group secret, a member disabled and enabled, the group disabled, the
    group removed. Kpm is computed here with Python hmac."""
    dom = "line-%s.example.com" % u.rand_hex(3)
    name = "g-" + dom
    s1, s2 = bytes.fromhex(u.rand_hex(32)), bytes.fromhex(u.rand_hex(32))
    dev = "dev-1@" + dom

    def add(secret):
        mefd.ctl("group", "add", name, "--pattern", "*@" + dom, "--secret-hex", secret.hex())

    def refused(reason, key):
        mark = u.log_mark(mefd)
        for listener, proto in (("coap", "dtls1_2"), ("https_psk", "tls1_2")):
            assert not handshake(mefd, dev, key, listener, proto).ok, (listener, reason)
        assert reason in u.log_since(mefd, mark), (reason, u.log_since(mefd, mark)[-1500:])

    def accepted(key):
        before = u.keids(mefd)
        r = handshake(mefd, dev, key)
        assert r.ok, r.err[-1500:] + mefd.log()[-1500:]
        k = one_new_ke(mefd, before, dev)
        assert k["ke"] == u.ke_of(bytes.fromhex(r.keymat)).hex()

    add(s1)
    accepted(kpm(s1, dev))                   # the groups are in memory now
    mefd.ctl("group", "remove", name)
    add(s2)                                  # a new secret under the same name and pattern
    assert not handshake(mefd, dev, kpm(s1, dev)).ok
    accepted(kpm(s2, dev))
    mefd.ctl("client", "disable", dev)
    refused("group member is disabled", kpm(s2, dev))
    mefd.ctl("client", "enable", dev)
    accepted(kpm(s2, dev))
    store_sql(mefd, "UPDATE groups SET disabled = 1 WHERE name = '%s'" % name)
    refused("enrolment group is disabled", kpm(s2, dev))
    store_sql(mefd, "UPDATE groups SET disabled = 0 WHERE name = '%s'" % name)
    accepted(kpm(s2, dev))
    mefd.ctl("group", "remove", name)
    refused("unknown PSK identity", kpm(s2, dev))
