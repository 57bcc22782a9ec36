# SPDX-License-Identifier: BSD-2-Clause
"""The fetch path (TS-0003 8.3.2.1 step 6, decisions §3-§4, docs/fetch.md):
GET /fetchCredentials/<KeID>/<SUID> by an Enrolment Target over HTTPS (PSK
and certificate listeners) and CoAP (DTLS and TCP/TLS). Expected keys are
computed here with Python hmac from the keying material the enrolee's own
openssl s_client printed, never from anything mefd says."""

import base64
import re
import time

import pytest

import harness
import rspf_util as u
from rspf_util import mefd  # noqa: F401  (the shared daemon, rate limits lifted)
from conftest import new_psk

LABEL = harness.BOOTSTRAP_LABEL
SUID = 21
CERT_SUID = 10
MAF = "maf.example.com"

# expected (HTTP status, CoAP code) per RSC, TS-0009 / TS-0008
STATUS = {2000: (200, 205), 4000: (400, 400), 4004: (404, 404), 4103: (403, 403),
          4106: (403, 403)}


class Enrolee:
    """An enrolee bootstrapped once over DTLS: its EKM is the oracle."""

    def __init__(self, d, cid, ident, key_hex, ekm):
        self.cid, self.ident, self.key_hex = cid, ident, key_hex
        self.ekm = ekm
        self.keid = u.keid_of(ekm, harness.FQDN)
        self.ke = u.ke_of(ekm)
        rec = [k for k in u.ke_list(d, client=cid) if k["keID"] == self.keid]
        assert len(rec) == 1, "mefd did not store the enrolee's Ke %s" % self.keid
        self.rec = rec[0]


def bootstrap(d, cid, ident, key_hex, listener="coap", proto="dtls1_2"):
    r = harness.s_client(d.ports[listener], proto, psk_identity=ident, psk=key_hex,
                         keymatexport=LABEL)
    assert r.keymat, "enrolee handshake failed:\n%s\n%s" % (r.err[-1500:], d.log()[-1500:])
    time.sleep(0.2)
    return Enrolee(d, cid, ident, key_hex, bytes.fromhex(r.keymat))


def new_enrolee(d, *targets, expiry="1h", enrolee_id=None, name="fe"):
    cid = "%s-%s" % (name, u.rand_hex(4))
    ident = cid + "@devices.example.com"
    _, key_hex = new_psk()
    d.add_psk_client(cid, ident, key_hex)
    args = ["client", "set", cid, "--expiry", expiry]
    for t in targets:
        args += ["--target", t]
    if enrolee_id:
        args += ["--enrolee-id", enrolee_id]
    d.ctl(*args)
    return bootstrap(d, cid, ident, key_hex)


@pytest.fixture(scope="module")
def enrolee(mefd, pki):
    cse1 = pki.clients["cse1"].san
    return new_enrolee(mefd, "%s:%d" % (MAF, SUID), "%s:%d" % (cse1, CERT_SUID),
                       enrolee_id="C-fetch-enrolee")


# ------------------------------------------------------------- requesters

class Requester:
    """A target client and the way it talks to mefd; get() returns a u.Resp
    with status (HTTP status or CoAP code as 205), rsc and body."""

    def __init__(self, name, cid, transport, get):
        self.name, self.cid, self.transport, self._get = name, cid, transport, get

    def get(self, path, origin=None):
        return self._get(path, origin)

    def want_status(self, rsc):
        return STATUS[rsc][1 if self.transport in ("dtls", "coap+tls") else 0]


def _http_resp(r):
    body = r.body.decode("utf-8", "replace") if isinstance(r.body, bytes) else r.body
    out = u.Resp(r.status, r.rsc, body, "%r" % r.headers)
    out.headers = r.headers
    return out


def maf_requesters(d):
    e = d.enrolees
    ident, ascii_key, hexkey = "maf@mef.example.com", e.maf_ascii, e.maf_hex

    def https(proto):
        def get(path, origin):
            h = {"X-M2M-Origin": origin} if origin is not None else {}
            return _http_resp(harness.https_s_client(d.ports["https_psk"], path=path, headers=h,
                                                     proto=proto, psk_identity=ident,
                                                     psk=hexkey))
        return get

    def coap_client(scheme):
        def get(path, origin):
            return u.coap_get("%s://%s:%d%s" % (scheme, harness.HOST, d.ports["coap"], path),
                              psk_identity=ident, psk_ascii=ascii_key, origin=origin)
        return get

    def coap_raw(proto):
        def get(path, origin):
            return u.coap_raw_get(d.ports["coap"], path, proto, origin, psk_identity=ident,
                                  psk=hexkey)
        return get

    return [Requester("maf-https-psk-tls12", MAF, "https-psk", https("tls1_2")),
            Requester("maf-https-psk-tls13", MAF, "https-psk", https("tls1_3")),
            Requester("maf-dtls", MAF, "dtls", coap_raw("dtls1_2")),
            Requester("maf-coap-tcp", MAF, "coap+tls", coap_raw("tls1_2")),
            Requester("maf-dtls-coap-client", MAF, "dtls", coap_client("coaps")),
            Requester("maf-coap-tcp-coap-client", MAF, "coap+tls", coap_client("coaps+tcp"))]


def cert_requesters(d, cert):
    cafile = str(d.pki.ca.crt)

    def https(path, origin):
        h = {"X-M2M-Origin": origin} if origin is not None else {}
        return _http_resp(harness.curl(d.ports["https_cert"], path=path, cert=cert.crt,
                                       key=cert.key, cafile=cafile, headers=h))

    def coap_client(scheme):
        def get(path, origin):
            return u.coap_get("%s://%s:%d%s" % (scheme, harness.HOST, d.ports["coap"], path),
                              cert=str(cert.crt), key=str(cert.key), cafile=cafile,
                              origin=origin)
        return get

    def coap_raw(proto):
        def get(path, origin):
            return u.coap_raw_get(d.ports["coap"], path, proto, origin, cert=str(cert.crt),
                                  key=str(cert.key), cafile=cafile)
        return get

    return [Requester("cert-https", cert.san, "https-cert", https),
            Requester("cert-dtls", cert.san, "dtls", coap_raw("dtls1_2")),
            Requester("cert-coap-tcp", cert.san, "coap+tls", coap_raw("tls1_3")),
            Requester("cert-dtls-coap-client", cert.san, "dtls", coap_client("coaps"))]


REQ_NAMES = ["maf-https-psk-tls12", "maf-https-psk-tls13", "maf-dtls", "maf-coap-tcp",
             "cert-https", "cert-dtls", "cert-coap-tcp"]
# the stock libcoap client too, where the CoAP side matters most
COAP_CLIENT_NAMES = ["maf-dtls-coap-client", "maf-coap-tcp-coap-client", "cert-dtls-coap-client"]


def requester(d, pki, name):
    for r in maf_requesters(d) + cert_requesters(d, pki.clients["cse1"]):
        if r.name == name:
            return r
    raise KeyError(name)


def path_of(keid, suid, kdf=None):
    return "/fetchCredentials/%s/%s%s" % (keid, suid, "?kdf=" + kdf if kdf else "")


def assert_success(r, req, resp, enrolee, suid, key):
    assert resp.status == req.want_status(2000), resp
    assert resp.rsc == 2000, resp
    j = resp.json()
    assert j["status"] is True
    assert base64.b64decode(j["credential"], validate=True) == key, resp
    assert j["enroleeID"] == enrolee.rec["enroleeID"]
    assert j["lifetime"] == enrolee.rec["expirationTime"]
    assert re.fullmatch(r"\d{8}T\d{6}", j["lifetime"])


def assert_failure(req, resp, rsc, enrolee=None):
    assert resp.status == req.want_status(rsc), resp
    assert resp.rsc == rsc, resp
    j = resp.json()
    assert j["status"] is False, resp
    assert isinstance(j.get("errorString"), str) and j["errorString"], resp
    assert "credential" not in j
    if enrolee is not None:
        for b in (enrolee.ke, enrolee.ekm):
            assert u.b64(b) not in resp.body and b.hex() not in resp.body.lower()


# ----------------------------------------------------------------- success

@pytest.mark.parametrize("name", REQ_NAMES + COAP_CLIENT_NAMES)
def test_fetch_usage_constrained(mefd, pki, enrolee, name):
    req = requester(mefd, pki, name)
    suid = SUID if req.cid == MAF else CERT_SUID
    want = u.usage_constrained(enrolee.ke, suid, req.cid)
    resp = req.get(path_of(enrolee.keid, suid), origin=req.cid)
    assert_success(None, req, resp, enrolee, suid, want)
    # both bindings echo the request identifier
    if req.transport.startswith("https"):
        assert resp.headers.get("x-m2m-ri") in ("rq-1", "rq-curl")
    elif hasattr(resp, "rqi"):
        assert resp.rqi == b"rq-1"


@pytest.mark.parametrize("name", ["maf-https-psk-tls12", "maf-dtls", "cert-https",
                                  "cert-coap-tcp"])
def test_fetch_without_originator(mefd, pki, enrolee, name):
    """No X-M2M-Origin / oneM2M-FR: the authenticated client is the originator."""
    req = requester(mefd, pki, name)
    suid = SUID if req.cid == MAF else CERT_SUID
    resp = req.get(path_of(enrolee.keid, suid))
    assert_success(None, req, resp, enrolee, suid, u.usage_constrained(enrolee.ke, suid, req.cid))


@pytest.mark.parametrize("name", ["maf-https-psk-tls12", "maf-coap-tcp", "cert-https",
                                  "cert-dtls"])
@pytest.mark.parametrize("kdf", ["km", "kpsa", "uc"])
def test_fetch_kdf(mefd, pki, enrolee, name, kdf):
    req = requester(mefd, pki, name)
    suid = SUID if req.cid == MAF else CERT_SUID
    want = {"km": u.km(enrolee.ke, req.cid), "kpsa": u.kpsa(enrolee.ke, req.cid),
            "uc": u.usage_constrained(enrolee.ke, suid, req.cid)}[kdf]
    resp = req.get(path_of(enrolee.keid, suid, kdf), origin=req.cid)
    assert_success(None, req, resp, enrolee, suid, want)


def test_keid_case_insensitive(mefd, pki, enrolee):
    rel, _, fqdn = enrolee.keid.partition("@")
    req = requester(mefd, pki, "maf-https-psk-tls12")
    want = u.usage_constrained(enrolee.ke, SUID, MAF)
    for keid in (rel.lower() + "@" + fqdn, rel + "@" + fqdn.upper(), rel + "%40" + fqdn):
        resp = req.get(path_of(keid, SUID), origin=MAF)
        assert_success(None, req, resp, enrolee, SUID, want)


def test_several_kes_each_fetchable(mefd, pki):
    """decisions §1.3: a second handshake makes a second Ke; both serve fetches."""
    e1 = new_enrolee(mefd, "%s:%d" % (MAF, SUID), name="twice")
    e2 = bootstrap(mefd, e1.cid, e1.ident, e1.key_hex, "https_psk", "tls1_2")
    assert e1.keid != e2.keid
    req = requester(mefd, pki, "maf-dtls")
    for e in (e1, e2):
        resp = req.get(path_of(e.keid, SUID), origin=MAF)
        assert_success(None, req, resp, e, SUID, u.usage_constrained(e.ke, SUID, MAF))


# ----------------------------------------------------------------- refusals

@pytest.mark.parametrize("name", REQ_NAMES)
def test_unknown_keid(mefd, pki, enrolee, name):
    req = requester(mefd, pki, name)
    keid = u.rand_hex(16).upper() + "@" + harness.FQDN
    resp = req.get(path_of(keid, SUID if req.cid == MAF else CERT_SUID), origin=req.cid)
    assert_failure(req, resp, 4004)


@pytest.mark.parametrize("name", ["maf-https-psk-tls12", "maf-dtls", "maf-coap-tcp",
                                  "cert-https", "cert-dtls"])
def test_wrong_suid(mefd, pki, enrolee, name):
    req = requester(mefd, pki, name)
    suid = 22 if req.cid == MAF else 11
    resp = req.get(path_of(enrolee.keid, suid), origin=req.cid)
    assert_failure(req, resp, 4103, enrolee)


@pytest.mark.parametrize("name", ["https", "dtls", "coap-tcp"])
def test_not_a_target(mefd, pki, enrolee, name):
    """cse2 is a registered certificate client but not a target of the enrolee."""
    req = [r for r in cert_requesters(mefd, pki.clients["cse2"]) if r.name == "cert-" + name][0]
    for suid in (SUID, CERT_SUID):
        resp = req.get(path_of(enrolee.keid, suid), origin=req.cid)
        assert_failure(req, resp, 4103, enrolee)
        for kdf in ("km", "kpsa"):
            resp = req.get(path_of(enrolee.keid, suid, kdf), origin=req.cid)
            assert_failure(req, resp, 4103, enrolee)


def test_enrolee_cannot_fetch_its_own(mefd, pki, enrolee):
    def get(path, origin):
        h = {"X-M2M-Origin": origin} if origin else {}
        return _http_resp(harness.https_s_client(mefd.ports["https_psk"], path=path, headers=h,
                                                 psk_identity=enrolee.ident,
                                                 psk=enrolee.key_hex))
    req = Requester("self", enrolee.cid, "https-psk", get)
    resp = req.get(path_of(enrolee.keid, SUID), origin=enrolee.cid)
    assert_failure(req, resp, 4103, enrolee)


@pytest.mark.parametrize("name", REQ_NAMES + COAP_CLIENT_NAMES[:2])
def test_spoofed_originator(mefd, pki, enrolee, name):
    """X-M2M-Origin / oneM2M-FR naming another (even authorised) target: 4106."""
    req = requester(mefd, pki, name)
    other = pki.clients["cse1"].san if req.cid == MAF else MAF
    suid = SUID if req.cid == MAF else CERT_SUID
    resp = req.get(path_of(enrolee.keid, suid), origin=other)
    assert_failure(req, resp, 4106, enrolee)


BAD_PATHS = [
    ("short-keid", "ABCDEF@" + harness.FQDN, "21"),
    ("not-hex", "Z" * 32 + "@" + harness.FQDN, "21"),
    ("no-fqdn", "A" * 32, "21"),
    ("suid-alpha", None, "abc"),
    ("suid-neg", None, "-5"),
]


@pytest.mark.parametrize("name", ["maf-https-psk-tls12", "maf-dtls", "cert-https",
                                  "cert-coap-tcp"])
def test_malformed(mefd, pki, enrolee, name):
    req = requester(mefd, pki, name)
    for what, keid, suid in BAD_PATHS:
        resp = req.get(path_of(keid or enrolee.keid, suid), origin=req.cid)
        assert_failure(req, resp, 4000, enrolee), what
    ok_suid = SUID if req.cid == MAF else CERT_SUID
    resp = req.get(path_of(enrolee.keid, ok_suid, "nope"), origin=req.cid)
    assert_failure(req, resp, 4000, enrolee)


def test_revoked(mefd, pki):
    e = new_enrolee(mefd, "%s:%d" % (MAF, SUID), name="rev")
    reqs = [requester(mefd, pki, n) for n in ("maf-https-psk-tls12", "maf-dtls", "maf-coap-tcp")]
    resp = reqs[0].get(path_of(e.keid, SUID), origin=MAF)
    assert_success(None, reqs[0], resp, e, SUID, u.usage_constrained(e.ke, SUID, MAF))
    mefd.ctl("ke", "revoke", e.keid)
    for req in reqs:
        for kdf in (None, "km"):
            resp = req.get(path_of(e.keid, SUID, kdf), origin=MAF)
            assert_failure(req, resp, 4004, e)


def test_expired(mefd, pki):
    e = new_enrolee(mefd, "%s:%d" % (MAF, SUID), expiry="2s", name="exp")
    assert u.parse_stamp(e.rec["expirationTime"]) - u.parse_stamp(e.rec["created"]) == 2
    time.sleep(3.2)
    for n in ("maf-https-psk-tls12", "maf-coap-tcp"):
        req = requester(mefd, pki, n)
        resp = req.get(path_of(e.keid, SUID), origin=MAF)
        assert_failure(req, resp, 4004, e)


def test_refusals_logged_without_secrets(mefd, pki, enrolee):
    mark = u.log_mark(mefd)
    req = requester(mefd, pki, "maf-https-psk-tls12")
    req.get(path_of(enrolee.keid, 99), origin=MAF)
    resp = req.get(path_of(enrolee.keid, SUID), origin=MAF)
    assert resp.rsc == 2000
    time.sleep(0.2)
    new = u.log_since(mefd, mark)
    assert re.search(r"fetchCredentials.*refused", new), new
    for b in (enrolee.ke, u.usage_constrained(enrolee.ke, SUID, MAF)):
        assert b.hex() not in new.lower() and u.b64(b) not in new
