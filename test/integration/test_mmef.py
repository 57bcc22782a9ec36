# SPDX-License-Identifier: BSD-2-Clause
"""Mmef (decisions §4): MEF Client Registration, Key Registration/Retrieval
and Client Commands over HTTPS (openssl s_client, TLS-PSK) and CoAP
(coap-client-openssl). The exported key is checked against what openssl
s_client -keymatexport printed for that very session."""

import base64
import json
import re
import time

import pytest

import harness
from conftest import Enrolees, new_psk

ADMIN = "admin.example.com"
TY_REG, TY_KEY, TY_CMD = 60001, 60002, 60003
EXPORTER = "EXPORTER-oneM2M-Connection"


def et(seconds=3600):
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() + seconds))


# every request here is a fresh handshake: lift the per-identity rate limits
LIMITS = harness.LIMITS_LIFTED


@pytest.fixture(scope="module")
def mm(mefctl, pki, tmp_path_factory):
    """psk1 (source), maf.example.com (target) and a third PSK client 'other'."""
    mefd = harness.Mefd(tmp_path_factory.mktemp("mmef"), pki, extra=LIMITS)
    mefd.start()
    mefd.enrolees = e = Enrolees(mefd, pki)
    oa, oh = new_psk()
    mefd.add_psk_client("other", "other@mef.example.com", oh)
    mefd.clients = {
        "psk1": (e.psk_identity, e.psk_hex, e.psk_ascii),
        "maf.example.com": ("maf@mef.example.com", e.maf_hex, e.maf_ascii),
        "other": ("other@mef.example.com", oh, oa),
    }
    yield mefd
    mefd.stop(expect_rc=0)


def http(d, who, method, path, body=None, ty=None, keymat=False):
    ident, hexkey, _ = d.clients[who]
    ct = "application/vnd.onem2m-res+json" + (f"; ty={ty}" if ty else "")
    headers = {"X-M2M-Origin": who, "X-M2M-RVI": "3"}
    raw = b""
    if body is not None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = ct
    r = harness.https_s_client(d.ports["https_psk"], method, path, headers=headers, body=raw,
                               psk_identity=ident, psk=hexkey,
                               keymatexport=EXPORTER if keymat else None)
    assert r.status, f"no HTTP response: {r.tls.err[-400:] if r.tls else ''}"
    assert r.headers.get("x-m2m-ri") == "rq-1"
    r.json = json.loads(r.body) if r.body else None
    return r


def register(d, who="psk1", admin=ADMIN):
    r = http(d, who, "POST", "/mef", {"sec:mefClientReg": {"et": et(), "lbl": ["a:b"],
                                                           "adminFQDN": admin}}, ty=TY_REG)
    return r


def test_registration_lifecycle_http(mm):
    r = register(mm, admin="reg.example.com")
    assert (r.status, r.rsc) == (201, 2001)
    reg = r.json["sec:mefClientReg"]
    assert reg["clientID"] == "psk1" and reg["adminFQDN"] == "reg.example.com"
    assert r.headers["content-location"] == "/mef/" + reg["ri"]
    assert "ty=60001" in r.headers["content-type"]
    ri = reg["ri"]
    # one registration per (client, adminFQDN): 4105 CONFLICT
    r = register(mm, admin="reg.example.com")
    assert (r.status, r.rsc) == (409, 4105)
    r = http(mm, "psk1", "GET", "/mef/" + ri)
    assert (r.status, r.rsc) == (200, 2000) and r.json["sec:mefClientReg"]["ri"] == ri
    r = http(mm, "other", "GET", "/mef/" + ri)
    assert (r.status, r.rsc) == (403, 4103)
    r = http(mm, "other", "DELETE", "/mef/" + ri)
    assert r.rsc == 4103
    r = http(mm, "psk1", "PUT", "/mef/" + ri, {"sec:mefClientReg": {"lbl": ["x:y"]}})
    assert (r.status, r.rsc) == (200, 2004) and r.json["sec:mefClientReg"]["lbl"] == ["x:y"]
    out = json.loads(mm.ctl("reg", "show", ri, "--json").stdout)
    assert out["clientID"] == "psk1" and out["lbl"] == ["x:y"]
    r = http(mm, "psk1", "DELETE", "/mef/" + ri)
    assert (r.status, r.rsc) == (200, 2002)
    r = http(mm, "psk1", "GET", "/mef/" + ri)
    assert (r.status, r.rsc) == (404, 4004)


def test_key_registration_exported_http(mm):
    register(mm)  # may already exist (4105) from another test: either way registered
    body = {"sec:mefKeyReg": {"et": et(), "adminFQDN": ADMIN, "SUID": 22,
                              "targetIDs": ["maf.example.com"]}}
    r = http(mm, "psk1", "POST", "/mef", body, ty=TY_KEY, keymat=True)
    assert (r.status, r.rsc) == (201, 2001), r.body
    km = r.tls.keymat
    assert len(km) == 96
    k = r.json["sec:mefKeyReg"]
    # decisions §1.7: RelativeKeyID = UPPERCASE-hex(EKM[0..15]), key = EKM[16..47]
    assert k["relativeKeyID"] == km[:32]
    assert k["keyID"] == km[:32] + "@" + harness.FQDN
    assert k["sourceClientID"] == "psk1" and k["targetIDs"] == ["maf.example.com"]
    assert "keyValue" not in k
    rel = k["relativeKeyID"]
    r = http(mm, "maf.example.com", "GET", "/mef/" + rel)
    assert (r.status, r.rsc) == (200, 2000)
    got = r.json["sec:mefKeyReg"]
    assert base64.b64decode(got["keyValue"]).hex().upper() == km[32:]
    assert got["sourceClientID"] == "psk1" and got["SUID"] == 22 and got["adminFQDN"] == ADMIN
    # the source sees its registration without the key value
    r = http(mm, "psk1", "GET", "/mef/" + rel)
    assert r.rsc == 2000 and "keyValue" not in r.json["sec:mefKeyReg"]
    # refusals: a non-target reads, a target deletes or updates
    assert http(mm, "other", "GET", "/mef/" + rel).rsc == 4103
    assert http(mm, "maf.example.com", "DELETE", "/mef/" + rel).rsc == 4103
    assert http(mm, "maf.example.com", "PUT", "/mef/" + rel,
                {"sec:mefKeyReg": {"targetIDs": ["maf.example.com"]}}).rsc == 4103
    # update by the source: new target list; the old target loses access
    r = http(mm, "psk1", "PUT", "/mef/" + rel, {"sec:mefKeyReg": {"targetIDs": ["other"]}})
    assert (r.status, r.rsc) == (200, 2004)
    assert http(mm, "maf.example.com", "GET", "/mef/" + rel).rsc == 4103
    assert http(mm, "other", "GET", "/mef/" + rel).rsc == 2000
    listed = json.loads(mm.ctl("keyreg", "list", "--json").stdout)
    assert any(x["relativeKeyID"] == rel and "keyValue" not in x for x in listed)
    listed = json.loads(mm.ctl("keyreg", "list", "--json", "--show-secrets").stdout)
    assert [base64.b64decode(x["keyValue"]).hex().upper() for x in listed
            if x["relativeKeyID"] == rel] == [km[32:]]
    r = http(mm, "psk1", "DELETE", "/mef/" + rel)
    assert (r.status, r.rsc) == (200, 2002)
    assert http(mm, "other", "GET", "/mef/" + rel).rsc == 4004


def test_key_registration_with_value(mm):
    register(mm)
    key = bytes(range(32))
    body = {"sec:mefKeyReg": {"et": et(), "adminFQDN": ADMIN, "SUID": 24,
                              "targetIDs": ["maf.example.com", "other"],
                              "keyValue": base64.b64encode(key).decode()}}
    r = http(mm, "psk1", "POST", "/mef", body)
    assert r.rsc == 2001, r.body
    rel = r.json["sec:mefKeyReg"]["relativeKeyID"]
    assert len(rel) == 32 and rel == rel.upper()
    for who in ("maf.example.com", "other"):
        got = http(mm, who, "GET", "/mef/" + rel).json["sec:mefKeyReg"]
        assert base64.b64decode(got["keyValue"]) == key


@pytest.mark.parametrize("body,rsc", [
    (b"{not json", 4000),
    (b'{"sec:mefClientReg":' * 9 + b'{}' + b'}' * 9, 4000),          # nesting > 8
    ({"m2m:ae": {"et": "20990101T000000"}}, 4000),                   # unknown root
    ({"sec:mefClientReg": {"et": "20990101T000000"}}, 4000),         # adminFQDN missing
    ({"sec:mefClientReg": {"et": 5, "adminFQDN": ADMIN}}, 4000),     # wrong type
    ({"sec:mefClientReg": {"et": "20990101T000000", "adminFQDN": ADMIN, "ri": "x"}}, 4000),
    ({"sec:mefKeyReg": {"et": "20990101T000000", "adminFQDN": ADMIN, "SUID": 99}}, 4000),
    ({"sec:mefKeyReg": {"et": "20990101T000000", "adminFQDN": ADMIN, "SUID": 22,
                        "targetIDs": ["a", "b"]}}, 4102),             # SAEF needs one target
    ({"sec:mefKeyReg": {"et": "20990101T000000", "adminFQDN": ADMIN, "SUID": 24}}, 4102),
    ({"sec:mefKeyReg": {"et": "20990101T000000", "adminFQDN": "unregistered.example.com",
                        "SUID": 22, "targetIDs": ["maf.example.com"]}}, 4103),
    ({"sec:mefKeyReg": {"et": "20990101T000000", "adminFQDN": ADMIN, "SUID": 22,
                        "targetIDs": ["maf.example.com"], "keyValue": "c2hvcnQ="}}, 4000),
])
def test_bad_input(mm, body, rsc):
    register(mm)
    r = http(mm, "psk1", "POST", "/mef", body)
    assert r.rsc == rsc, r.body
    assert r.status == harness_http(rsc)


def harness_http(rsc):
    return {4000: 400, 4102: 400, 4103: 403, 4004: 404, 4005: 405}[rsc]


def test_ty_disagrees_and_routes(mm):
    r = http(mm, "psk1", "POST", "/mef", {"sec:mefClientReg": {"et": et(), "adminFQDN": ADMIN}},
             ty=TY_KEY)
    assert (r.status, r.rsc) == (400, 4000)
    assert http(mm, "psk1", "GET", "/mef/ABCDEF/nothing").rsc == 4004
    assert http(mm, "psk1", "DELETE", "/mef").rsc == 4005
    assert http(mm, "psk1", "GET", "/mef/00000000000000000000000000000000").rsc == 4004


def test_commands(mm):
    r = register(mm, admin="cmd.example.com")
    assert r.rsc == 2001
    ri = r.json["sec:mefClientReg"]["ri"]
    assert "ch" not in r.json["sec:mefClientReg"]
    # arguments are validated before anything is queued
    bad = mm.ctl("cmd", "queue", ri, "CERT_PROV", "uri=https://evil.example.com/est",
                 "subject-type=cse", "subject-id=/cse1", check=False)
    assert bad.returncode == 1 and "uri" in bad.stderr
    mm.ctl("cmd", "queue", ri, "CERT_PROV", f"uri=https://{harness.FQDN}/.well-known/est",
           "subject-type=cse", "subject-id=/cse1")
    mm.ctl("cmd", "queue", ri, "MO_NODE", "path=./authProfile/1", "type=authProfile", "suid=22")
    reg = http(mm, "psk1", "GET", "/mef/" + ri).json["sec:mefClientReg"]
    assert reg["ch"] == [{"nm": "cmd", "typ": TY_CMD, "val": f"/mef/{ri}/cmd"}]
    c = http(mm, "psk1", "GET", f"/mef/{ri}/cmd").json["sec:mefClientCmd"]
    assert c["cmdStatusCode"] == 10 and c["cmdDescription"]["cmdClassID"] == 1
    args = c["cmdDescription"]["cmdArgs"]["certProvCmdArgs"]
    assert args == {"certProvProtocolID": 1, "URI": f"https://{harness.FQDN}/.well-known/est",
                    "certSubjectType": 2, "certSubjectID": "/cse1"}
    first = c["cmdID"]
    # a Retrieve without a status update re-issues the same command
    c = http(mm, "psk1", "GET", f"/mef/{ri}/cmd").json["sec:mefClientCmd"]
    assert (c["cmdID"], c["cmdStatusCode"]) == (first, 11)
    # another client may not touch this queue
    assert http(mm, "other", "GET", f"/mef/{ri}/cmd").rsc == 4103
    assert http(mm, "psk1", "PUT", f"/mef/{ri}/cmd",
                {"sec:mefClientCmd": {"cmdID": first, "cmdStatusCode": 7}}).rsc == 4000
    r = http(mm, "psk1", "PUT", f"/mef/{ri}/cmd",
             {"sec:mefClientCmd": {"cmdID": first, "cmdStatusCode": 20}})
    assert (r.status, r.rsc) == (200, 2004)
    c = r.json["sec:mefClientCmd"]
    assert c["cmdDescription"]["cmdClassID"] == 3 and c["cmdStatusCode"] == 10
    assert c["cmdID"] > first
    mo = c["cmdDescription"]["cmdArgs"]["MONodeCmdArgs"]
    assert mo == {"objectPath": "./authProfile/1", "objectTypeID": 1,
                  "objectTypeSpecifcArgs": {"SUID": 22}}
    r = http(mm, "psk1", "PUT", f"/mef/{ri}/cmd",
             {"sec:mefClientCmd": {"cmdID": c["cmdID"], "cmdStatusCode": 20}})
    c = r.json["sec:mefClientCmd"]
    assert c["cmdDescription"] == {"cmdClassID": 0,
                                   "cmdArgs": {"noMoreCmdArgs": {"retryDuration": "PT1H"}}}
    listed = json.loads(mm.ctl("cmd", "list", ri, "--json").stdout)
    assert [(x["class"], x["state"], x.get("cmdStatusCode")) for x in listed] == [
        ("CERT_PROV", "done", 20), ("MO_NODE", "done", 20)]
    reg = http(mm, "psk1", "GET", "/mef/" + ri).json["sec:mefClientReg"]
    assert "ch" not in reg


def coap(d, who, method, path, payload=None, ty=None, tcp=False):
    ident, _, ascii_key = d.clients[who]
    opts = [(279, who), (283, "rq-c1")]
    if payload is not None:
        opts.append((12, "0x32"))  # Content-Format 50, application/json
    if ty:
        opts.append((267, "0x%04x" % ty))
    scheme = "coaps+tcp" if tcp else "coaps"
    r = harness.coap_client(f"{scheme}://{harness.HOST}:{d.ports['coap']}{path}", method,
                               psk_user=ident, psk_ascii=ascii_key, options=opts,
                               payload=json.dumps(payload) if payload is not None else None)
    if not r.payload:
        # coap-client -o writes only 2.05 payloads: take others from its -v 7 hex dump
        dumps = re.findall(r"^<<([0-9a-f]+)>>$", r.out + "\n" + r.err, re.M)
        r.payload = bytes.fromhex(dumps[-1]) if dumps else b""
    return r


def test_coap_registration_and_key(mm):
    r = coap(mm, "psk1", "post", "/mef",
             {"sec:mefClientReg": {"et": et(), "adminFQDN": "coap.example.com"}})
    assert r.code == "2.01", r.out + r.err
    ri = json.loads(r.payload)["sec:mefClientReg"]["ri"]
    r = coap(mm, "psk1", "get", "/mef/" + ri)
    assert r.code == "2.05" and json.loads(r.payload)["sec:mefClientReg"]["ri"] == ri
    assert coap(mm, "other", "get", "/mef/" + ri).code == "4.03"
    key = bytes(range(16, 48))
    r = coap(mm, "psk1", "post", "/mef",
             {"sec:mefKeyReg": {"et": et(), "adminFQDN": "coap.example.com", "SUID": 23,
                                "targetIDs": ["maf.example.com"],
                                "keyValue": base64.b64encode(key).decode()}}, tcp=True)
    assert r.code == "2.01", r.out + r.err
    rel = json.loads(r.payload)["sec:mefKeyReg"]["relativeKeyID"]
    r = coap(mm, "maf.example.com", "get", "/mef/" + rel)
    assert r.code == "2.05"
    assert base64.b64decode(json.loads(r.payload)["sec:mefKeyReg"]["keyValue"]) == key
    assert coap(mm, "other", "get", "/mef/" + rel).code == "4.03"
    assert coap(mm, "maf.example.com", "delete", "/mef/" + rel).code == "4.03"
    mm.ctl("cmd", "queue", ri, "DEV_CFG", "dm=lwm2m", f"uri=coaps://{harness.FQDN}:5684")
    r = coap(mm, "psk1", "get", f"/mef/{ri}/cmd")
    assert r.code == "2.05"
    c = json.loads(r.payload)["sec:mefClientCmd"]
    assert c["cmdDescription"]["cmdArgs"] == {
        "devCfgCmdArgs": {"deviceConfigURI": f"3:coaps://{harness.FQDN}:5684"}}
    r = coap(mm, "psk1", "put", f"/mef/{ri}/cmd",
             {"sec:mefClientCmd": {"cmdID": c["cmdID"], "cmdStatusCode": 20}})
    assert r.code == "2.04"
    assert json.loads(r.payload)["sec:mefClientCmd"]["cmdDescription"]["cmdClassID"] == 0
    assert coap(mm, "psk1", "delete", f"/mef/{rel}").code == "2.02"
    assert coap(mm, "psk1", "delete", f"/mef/{ri}").code == "2.02"
