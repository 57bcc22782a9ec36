# SPDX-License-Identifier: BSD-2-Clause
"""EST (decisions §5, docs/est.md) against independent clients: curl and the
openssl CLI over HTTPS (RFC 7030 wire format, base64 bodies), raw HTTP over
openssl s_client for TLS-PSK enrolees, coap-client-openssl for RFC 9148
(DER, block-wise), and openssl verify / x509 / crl / asn1parse as oracles.
Also: refusals (nothing issued or recorded), serverkeygen, revocation
followed by a refused handshake and a CRL entry, and RA mode with a second
mefd as the upstream CA."""

import base64
import json
import re
import subprocess

import pytest

import harness
from rspf_util import mefd  # noqa: F401  (the shared daemon, rate limits lifted)
from harness import FQDN, HOST

EST = "/.well-known/est"
PSK_URN = "urn:x-onem2m-mef:client:"


def ossl(*args, input=None, check=True):
    cp = subprocess.run(["openssl", *[str(a) for a in args]], input=input, capture_output=True,
                        timeout=30)
    if check and cp.returncode != 0:
        raise AssertionError(f"openssl {args}: {cp.stderr.decode(errors='replace')}")
    return cp


def genkey(path, curve="P-256", alg="EC"):
    if alg == "RSA":
        ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}", "-out", path)
    return path


def make_csr(tmp, name, sans, curve="P-256", alg="EC", challenge=None, md="sha256"):
    """A DER CSR made by openssl req; sans is a list like ['URI:...']."""
    key = genkey(tmp / f"{name}.key", curve, alg)
    csr = tmp / f"{name}.csr"
    args = ["req", "-new", f"-{md}", "-key", key, "-subj", f"/CN={name}", "-outform", "DER",
            "-out", csr]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(sans)]
    if challenge:
        cnf = tmp / f"{name}.cnf"
        cnf.write_text("[req]\ndistinguished_name=dn\nattributes=att\nprompt=no\n"
                       f"[dn]\nCN={name}\n[att]\nchallengePassword={challenge}\n")
        args = [a for a in args if a not in ("-subj", f"/CN={name}")] + ["-config", cnf]
    ossl(*args)
    return csr.read_bytes(), key


def b64(der):
    return base64.encodebytes(der)


def p7_certs(tmp, b64body, name):
    """base64 PKCS#7 certs-only → PEM file of its certificates (openssl pkcs7)."""
    der = base64.b64decode(b64body)
    out = tmp / f"{name}.pem"
    ossl("pkcs7", "-inform", "DER", "-print_certs", "-out", out, input=der)
    return out


def x509_text(pem):
    return ossl("x509", "-in", pem, "-noout", "-text").stdout.decode()


def serial_of(pem):
    out = ossl("x509", "-in", pem, "-noout", "-serial").stdout.decode()
    return out.strip().split("=")[1].upper().lstrip("0")


def cert_count(d):
    return len(json.loads(d.ctl("cert", "list", "--json").stdout))


def cert_post(m, pki, path, der, ctype="application/pkcs10", who="cse1", raw=False):
    c = pki.clients[who]
    return harness.curl(m.ports["https_cert"], EST + path, method="POST", cert=c.crt, key=c.key,
                        cafile=pki.ca.crt, headers={"Content-Type": ctype},
                        body=der if raw else b64(der))


def psk_post(m, path, der, ctype="application/pkcs10"):
    e = m.enrolees
    body = b64(der)
    return harness.https_s_client(m.ports["https_psk"], method="POST", path=EST + path,
                                  headers={"Content-Type": ctype}, body=body,
                                  psk_identity=e.psk_identity, psk=e.psk_hex)


# ---------------------------------------------------------------- HTTPS, certificate client

def test_cacerts_and_csrattrs(mefd, pki, tmp_path):
    c = pki.clients["cse1"]
    r = harness.curl(mefd.ports["https_cert"], EST + "/cacerts", cert=c.crt, key=c.key,
                     cafile=pki.ca.crt)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/pkcs7-mime")
    assert r.headers.get("content-transfer-encoding") == "base64"
    pem = p7_certs(tmp_path, r.body, "cacerts")
    # the trust anchor mefd returns is the [ca] certificate, byte for byte
    fp = ossl("x509", "-in", pem, "-noout", "-fingerprint", "-sha256").stdout
    assert fp == ossl("x509", "-in", pki.ca.crt, "-noout", "-fingerprint", "-sha256").stdout

    r = harness.curl(mefd.ports["https_cert"], EST + "/csrattrs", cert=c.crt, key=c.key,
                     cafile=pki.ca.crt)
    assert r.status == 200 and r.headers["content-type"] == "application/csrattrs"
    txt = ossl("asn1parse", "-inform", "DER", input=base64.b64decode(r.body)).stdout.decode()
    assert "challengePassword" in txt and "Extension Request" in txt
    assert "prime256v1" in txt and "ecdsa-with-SHA256" in txt
    assert "X509v3 Subject Alternative Name" in txt
    # the SAN value inside the extension request is the client's registered SAN
    assert c.san.encode() in base64.b64decode(r.body)


def test_simpleenroll_cert_client(mefd, pki, tmp_path):
    c = pki.clients["cse1"]
    der, key = make_csr(tmp_path, "new", [f"URI:{c.san}"])
    before = cert_count(mefd)
    r = cert_post(mefd, pki, "/simpleenroll", der)
    assert r.status == 200, (r, mefd.log()[-800:])
    pem = p7_certs(tmp_path, r.body, "issued")
    v = ossl("verify", "-CAfile", p7_certs(tmp_path, harness.curl(
        mefd.ports["https_cert"], EST + "/cacerts", cert=c.crt, key=c.key,
        cafile=pki.ca.crt).body, "ta"), pem)
    assert b": OK" in v.stdout
    t = x509_text(pem)
    assert f"URI:{c.san}" in t
    assert "ecdsa-with-SHA256" in t and "prime256v1" in t
    assert re.search(r"Key Usage: critical\s+Digital Signature\s*\n", t)
    assert "TLS Web Client Authentication" in t and "CA:FALSE" in t
    # serial: at least 64 bits, positive (openssl prints no minus sign)
    sn = serial_of(pem)
    assert len(sn) >= 16 and "-" not in t.split("Serial Number:")[1].split("\n")[1]
    # recorded in the store, visible through mefctl
    assert cert_count(mefd) == before + 1
    rec = json.loads(mefd.ctl("cert", "show", sn, "--json").stdout)
    assert rec["clientID"] == c.san and rec["san"] == c.san and rec["status"] == "valid"
    # the new certificate works as a client certificate on the same listener
    r = harness.curl(mefd.ports["https_cert"], "/mef", cert=pem, key=key, cafile=pki.ca.crt)
    assert r.status == 200


def test_challenge_password_binds_keid(mefd, pki, tmp_path):
    """docs/est.md: a challengePassword, if present, must be this session's KeID."""
    c = pki.clients["cse1"]
    der, _ = make_csr(tmp_path, "chal", [f"URI:{c.san}"], challenge="0123456789ABCDEF@x")
    before = cert_count(mefd)
    r = cert_post(mefd, pki, "/simpleenroll", der)
    assert r.status == 403 and cert_count(mefd) == before


# ---------------------------------------------------------------- refusals

def _bad_csrs(tmp, san):
    good, _ = make_csr(tmp, "g", [f"URI:{san}"])
    flipped = bytearray(good)
    flipped[-5] ^= 0x55  # inside the signature BIT STRING
    v2 = bytearray(good)
    at = bytes(v2).find(b"\x02\x01\x00\x30")  # the info's version INTEGER, 0 = v1
    v2[at + 2] = 1
    return {
        "garbage": (b"\x30\x82\x01\x00" + b"junk" * 40, 400),
        "truncated": (good[: len(good) // 2], 400),
        "bad-signature": (bytes(flipped), 400),
        "sha1-signature": (make_csr(tmp, "s1", [f"URI:{san}"], md="sha1")[0], 400),
        "version-2": (bytes(v2), 400),
        "p384": (make_csr(tmp, "p384", [f"URI:{san}"], curve="P-384")[0], 400),
        "rsa": (make_csr(tmp, "rsa", [f"URI:{san}"], alg="RSA")[0], 400),
        "other-san": (make_csr(tmp, "o", ["URI://example.net/someone-else"])[0], 403),
        "extra-san": (make_csr(tmp, "x", [f"URI:{san}", "DNS:evil.example"])[0], 403),
        "no-san": (make_csr(tmp, "n", [])[0], 403),
    }


def test_bad_csrs_refused_nothing_recorded(mefd, pki, tmp_path):
    c = pki.clients["cse1"]
    before = cert_count(mefd)
    start = len(mefd.log())
    cases = _bad_csrs(tmp_path, c.san)
    for name, (der, status) in cases.items():
        r = cert_post(mefd, pki, "/simpleenroll", der)
        assert r.status == status, (name, r.status, r.body)
    # one log line per refusal
    refusals = re.findall(r"EST simpleenroll by .* refused", mefd.log()[start:])
    assert len(refusals) == len(cases)
    for why in ("request signature is not ECDSA with SHA-2", "not a version 1 request"):
        assert why in mefd.log()[start:], why
    # wrong media type, not base64, oversized, re-enrol with a third-party cert
    good, _ = make_csr(tmp_path, "g2", [f"URI:{c.san}"])
    assert cert_post(mefd, pki, "/simpleenroll", good, ctype="application/json").status == 415
    assert cert_post(mefd, pki, "/simpleenroll", b"%%%% not base64 %%%%", raw=True).status == 400
    assert cert_post(mefd, pki, "/simpleenroll", b"A" * 70000, raw=True).status == 413
    assert cert_post(mefd, pki, "/simpleenroll", b"QUFB" * 3000, raw=True).status == 400
    assert cert_post(mefd, pki, "/simplereenroll", good).status == 403
    assert cert_count(mefd) == before


def test_unauthenticated_refused(mefd, pki, tmp_path):
    # no client certificate: the handshake itself is refused, nothing answered
    r = harness.curl(mefd.ports["https_cert"], EST + "/cacerts", cafile=pki.ca.crt)
    assert r.status == 0
    # a certificate from an untrusted CA
    r = harness.curl(mefd.ports["https_cert"], EST + "/cacerts", cert=pki.rogue.crt,
                     key=pki.rogue.key, cafile=pki.ca.crt)
    assert r.status == 0
    # HTTP Basic is never an identity: the header changes nothing for a PSK peer
    der, _ = make_csr(tmp_path, "basic", ["URI://example.net/cse1"])
    r = psk_post(mefd, "/simpleenroll", der)
    assert r.status == 403


# ---------------------------------------------------------------- TLS-PSK enrolee, re-enrolment, revocation

def test_psk_enroll_reenroll_revoke(mefd, pki, tmp_path):
    ident = PSK_URN + "psk1"
    r = harness.https_s_client(mefd.ports["https_psk"], path=EST + "/csrattrs",
                               psk_identity=mefd.enrolees.psk_identity, psk=mefd.enrolees.psk_hex)
    assert r.status == 200 and ident.encode() in base64.b64decode(r.body)
    der, key = make_csr(tmp_path, "psk1", [f"URI:{ident}"])
    r = psk_post(mefd, "/simpleenroll", der)
    assert r.status == 200, (r, mefd.log()[-600:])
    pem = p7_certs(tmp_path, r.body, "psk1")
    assert f"URI:{ident}" in x509_text(pem)
    assert b": OK" in ossl("verify", "-CAfile", pki.ca.crt, pem).stdout
    sn = serial_of(pem)

    # the issued certificate authenticates psk1 on the certificate listener: re-enrol
    der2, key2 = make_csr(tmp_path, "psk1b", [f"URI:{ident}"])
    r = harness.curl(mefd.ports["https_cert"], EST + "/simplereenroll", method="POST", cert=pem,
                     key=key, cafile=pki.ca.crt, headers={"Content-Type": "application/pkcs10"},
                     body=b64(der2))
    assert r.status == 200, (r, mefd.log()[-600:])
    pem2 = p7_certs(tmp_path, r.body, "psk1b")
    assert serial_of(pem2) != sn

    # before revocation the certificate works on CoAP too (issued-certificate lookup)
    r = harness.coap_client(f"coaps://{HOST}:{mefd.ports['coap']}/est/crts", cert=pem, key=key,
                            cafile=pki.ca.crt, tmpdir=tmp_path, timeout=4)
    assert r.code == "2.05" and r.payload, r.err[-600:]
    # revoke the first: its handshake is refused, the CRL lists it, the second still works
    mefd.ctl("cert", "revoke", sn)
    r = harness.curl(mefd.ports["https_cert"], "/mef", cert=pem, key=key, cafile=pki.ca.crt)
    assert r.status == 0
    assert mefd.wait_log(r"handshake refused: certificate revoked")
    # on every listener: CoAP over DTLS and over TLS refuse it too
    for scheme in ("coaps", "coaps+tcp"):
        mark = len(mefd.log())
        r = harness.coap_client(f"{scheme}://{HOST}:{mefd.ports['coap']}/est/crts", cert=pem,
                                key=key, cafile=pki.ca.crt, tmpdir=tmp_path, timeout=4)
        assert r.code != "2.05" and not r.payload, scheme
        assert mefd.wait_log(r"handshake refused: certificate revoked", start=mark), scheme
    r = harness.curl(mefd.ports["https_cert"], "/crl.der", cert=pem2, key=key2, cafile=pki.ca.crt)
    assert r.status == 200 and r.headers["content-type"] == "application/pkix-crl"
    crl = tmp_path / "crl.der"
    crl.write_bytes(r.body)
    txt = ossl("crl", "-inform", "DER", "-in", crl, "-noout", "-text").stdout.decode()
    assert re.search(rf"Serial Number: 0*{sn}", txt, re.I)
    assert ossl("crl", "-inform", "DER", "-in", crl, "-noout", "-CAfile", pki.ca.crt,
                check=False).returncode == 0
    crl_pem = tmp_path / "crl.pem"
    ossl("crl", "-inform", "DER", "-in", crl, "-out", crl_pem)
    v = ossl("verify", "-crl_check", "-CRLfile", crl_pem, "-CAfile", pki.ca.crt, pem, check=False)
    assert b"revoked" in v.stdout + v.stderr
    v = ossl("verify", "-crl_check", "-CRLfile", crl_pem, "-CAfile", pki.ca.crt, pem2)
    assert b": OK" in v.stdout
    # re-enrolment with the revoked certificate: no session at all, nothing issued
    before = cert_count(mefd)
    r = harness.curl(mefd.ports["https_cert"], EST + "/simplereenroll", method="POST", cert=pem,
                     key=key, cafile=pki.ca.crt, headers={"Content-Type": "application/pkcs10"},
                     body=b64(der2))
    assert r.status == 0 and cert_count(mefd) == before


def test_serverkeygen(mefd, pki, tmp_path):
    c = pki.clients["cse1"]
    der, _ = make_csr(tmp_path, "skg", [f"URI:{c.san}"])
    r = cert_post(mefd, pki, "/serverkeygen", der)
    assert r.status == 200, r
    m = re.match(r"multipart/mixed; boundary=(\S+)", r.headers["content-type"])
    assert m
    parts = [p for p in r.body.split(b"--" + m.group(1).encode()) if b"Content-Type" in p]
    assert len(parts) == 2
    heads = [p.split(b"\r\n\r\n", 1) for p in parts]
    assert b"application/pkcs8" in heads[0][0] and b"application/pkcs7-mime" in heads[1][0]
    key_der = base64.b64decode(heads[0][1])
    keyfile = tmp_path / "skg.key"
    ossl("pkey", "-inform", "DER", "-out", keyfile, input=key_der)
    pem = p7_certs(tmp_path, heads[1][1], "skg")
    # the certificate certifies the key mefd generated
    pub_cert = ossl("x509", "-in", pem, "-noout", "-pubkey").stdout
    pub_key = ossl("pkey", "-in", keyfile, "-pubout").stdout
    assert pub_cert == pub_key
    assert "prime256v1" in x509_text(pem)


# ---------------------------------------------------------------- CoAP (RFC 9148)

def _coap(mefd, path, **kw):
    e = mefd.enrolees
    return harness.coap_client(f"coaps://{HOST}:{mefd.ports['coap']}{path}",
                               psk_user=e.psk_identity, psk_ascii=e.psk_ascii, **kw)


def test_coap_discovery_and_crts(mefd, pki, tmp_path):
    r = _coap(mefd, "/.well-known/core", tmpdir=tmp_path)
    assert r.code == "2.05", r.err[-500:]
    assert b'</est/crts>' in r.payload and b'rt="ace.est.crts"' in r.payload
    assert b'</est/skg>' in r.payload
    # block-wise: 64-byte blocks for a ~450-byte answer
    a = ["coap-client-openssl", "-m", "get", "-b", "64", "-B", "6", "-v", "7",
         "-u", mefd.enrolees.psk_identity, "-k", mefd.enrolees.psk_ascii,
         "-o", tmp_path / "crts.der", f"coaps://{HOST}:{mefd.ports['coap']}/est/crts"]
    cp = harness.run(a, timeout=10)
    dump = cp.stdout + cp.stderr
    # several 64-byte Block2 answers, the last without the M flag
    assert len(re.findall(r"c:2\.05 .*Block2:\d+/M/64", dump)) >= 5, dump[-1500:]
    der = (tmp_path / "crts.der").read_bytes()
    pem = tmp_path / "crts.pem"
    ossl("pkcs7", "-inform", "DER", "-print_certs", "-out", pem, input=der)
    fp = ossl("x509", "-in", pem, "-noout", "-fingerprint", "-sha256").stdout
    assert fp == ossl("x509", "-in", pki.ca.crt, "-noout", "-fingerprint", "-sha256").stdout


def test_coap_enroll_and_skg_blockwise(mefd, pki, tmp_path):
    ident = PSK_URN + "psk1"
    der, _ = make_csr(tmp_path, "coap", [f"URI:{ident}"])
    (tmp_path / "csr.der").write_bytes(der)
    base = ["coap-client-openssl", "-m", "post", "-b", "64", "-B", "6", "-v", "7", "-t", "286",
            "-u", mefd.enrolees.psk_identity, "-k", mefd.enrolees.psk_ascii,
            "-f", tmp_path / "csr.der"]
    cp = harness.run(base + ["-o", tmp_path / "sen.der",
                             f"coaps://{HOST}:{mefd.ports['coap']}/est/sen"], timeout=10)
    assert "c:2.04" in cp.stdout + cp.stderr or "c:2.01" in cp.stdout + cp.stderr or \
        (tmp_path / "sen.der").exists(), cp.stderr[-800:]
    pem = tmp_path / "sen.pem"
    ossl("pkcs7", "-inform", "DER", "-print_certs", "-out", pem,
         input=(tmp_path / "sen.der").read_bytes())
    assert f"URI:{ident}" in x509_text(pem)
    # skg over coaps+tcp: multipart-core [284, key, 281, certs]
    cp = harness.run(base + ["-o", tmp_path / "skg.cbor",
                             f"coaps+tcp://{HOST}:{mefd.ports['coap']}/est/skg"], timeout=10)
    body = (tmp_path / "skg.cbor").read_bytes()
    assert body[0] == 0x84, (body[:8], cp.stderr[-500:])
    parts = _cbor_parts(body)
    assert [p[0] for p in parts] == [284, 281]
    ossl("pkey", "-inform", "DER", "-noout", input=parts[0][1])
    ossl("pkcs7", "-inform", "DER", "-print_certs", input=parts[1][1])
    # wrong content format: 4.15, nothing issued
    before = cert_count(mefd)
    bad = [a if a != "286" else "50" for a in base]
    cp = harness.run(bad + [f"coaps://{HOST}:{mefd.ports['coap']}/est/sen"], timeout=10)
    assert "c:4.15" in cp.stdout + cp.stderr
    assert cert_count(mefd) == before


def test_coap_enroll_answer_piggybacked_after_commit(mefd, tmp_path):
    """An enrolment over DTLS queues its certificate row for the group commit;
    the answer waits for that commit without holding up the loop
    (docs/performance.md), yet coap-client gets ONE piggy-backed answer, an
    ACK with its request's message ID, and the certificate it got is stored.
    The CSR goes in one request (no Block1)."""
    ident = PSK_URN + "psk1"
    for i in range(4):
        der, _ = make_csr(tmp_path, f"pb{i}", [f"URI:{ident}"])
        (tmp_path / "csr.der").write_bytes(der)
        out = tmp_path / f"pb{i}.der"
        cp = harness.run(["coap-client-openssl", "-m", "post", "-v", "7", "-t", "286",
                          "-u", mefd.enrolees.psk_identity, "-k", mefd.enrolees.psk_ascii,
                          "-f", tmp_path / "csr.der", "-o", out,
                          f"coaps://{HOST}:{mefd.ports['coap']}/est/sen"], timeout=10)
        dump = cp.stdout + cp.stderr
        req = re.findall(r"^v:1 t:CON c:POST i:([0-9a-f]{4}) ", dump, re.M)
        resp = re.findall(r"^v:1 t:(\w+) c:(\d\.\d\d) i:([0-9a-f]{4}) ", dump, re.M)
        assert len(req) == 1 and "Block1" not in dump, dump[-1500:]
        assert [(t, mid) for t, _, mid in resp] == [("ACK", req[0])], dump[-1500:]
        assert resp[0][1].startswith("2."), dump[-1500:]
        pem = tmp_path / f"pb{i}.pem"
        ossl("pkcs7", "-inform", "DER", "-print_certs", "-out", pem, input=out.read_bytes())
        serial = serial_of(pem)
        assert mefd.ctl("cert", "show", serial, "--json").returncode == 0, serial


def _cbor_parts(b):
    """Minimal RFC 8949 reader for [uint, bstr, uint, bstr]."""
    def head(i):
        ai = b[i] & 31
        if ai < 24:
            return ai, i + 1
        n = {24: 1, 25: 2, 26: 4}[ai]
        return int.from_bytes(b[i + 1:i + 1 + n], "big"), i + 1 + n
    n, i = head(0)
    out = []
    for _ in range(n // 2):
        cf, i = head(i)
        ln, i = head(i)
        out.append((cf, b[i:i + ln]))
        i += ln
    return out


# ---------------------------------------------------------------- RA mode

def test_ra_mode_end_to_end(mefctl, pki, tmp_path):
    up = harness.Mefd(tmp_path / "upstream", pki, extra="[ca]\nra_clients = ra1\n")
    up.start()
    try:
        ra_cert = pki.clients["cse2"]
        up.add_cert_client("ra1", ra_cert.san)
        extra = (f"upstream = https://{HOST}:{up.ports['https_cert']}/.well-known/est\n"
                 f"upstream_certificate = {ra_cert.crt}\nupstream_key = {ra_cert.key}\n"
                 f"upstream_ca = {pki.ca.crt}\n")
        ra = harness.Mefd(tmp_path / "ra", pki)
        ra.write_conf(extra="")
        ra.conf.write_text(ra.conf.read_text().replace("[ca]\n", "[ca]\n" + extra, 1))
        ra.start()
        try:
            psk_ascii, psk_hex = "ra-enrolee-psk-0123456789", "ra-enrolee-psk-0123456789".encode().hex()
            ra.add_psk_client("dev1", "dev1@mef.example.com", psk_hex)
            ident = PSK_URN + "dev1"
            der, _ = make_csr(tmp_path, "dev1", [f"URI:{ident}"])
            r = harness.https_s_client(ra.ports["https_psk"], method="POST",
                                       path=EST + "/simpleenroll",
                                       headers={"Content-Type": "application/pkcs10"},
                                       body=b64(der), psk_identity="dev1@mef.example.com",
                                       psk=psk_hex, timeout=10)
            assert r.status == 200, (r, ra.log()[-800:], up.log()[-800:])
            pem = p7_certs(tmp_path, r.body, "ra-issued")
            assert f"URI:{ident}" in x509_text(pem)
            sn = serial_of(pem)
            # issued by the upstream for its RA client, recorded on both sides
            upl = json.loads(up.ctl("cert", "list", "--json").stdout)
            assert [(x["serial"], x["clientID"], x["san"]) for x in upl] == [(sn, "ra1", ident)]
            ral = json.loads(ra.ctl("cert", "list", "--json").stdout)
            assert [(x["serial"], x["clientID"]) for x in ral] == [(sn, "dev1")]
            # the RA still refuses a wrong SAN itself: upstream sees nothing
            bad, _ = make_csr(tmp_path, "dev1bad", ["URI://example.net/not-dev1"])
            r = harness.https_s_client(ra.ports["https_psk"], method="POST",
                                       path=EST + "/simpleenroll",
                                       headers={"Content-Type": "application/pkcs10"},
                                       body=b64(bad), psk_identity="dev1@mef.example.com",
                                       psk=psk_hex, timeout=10)
            assert r.status == 403
            assert len(json.loads(up.ctl("cert", "list", "--json").stdout)) == 1
            # cacerts through the RA is the upstream's
            r = harness.https_s_client(ra.ports["https_psk"], path=EST + "/cacerts",
                                       psk_identity="dev1@mef.example.com", psk=psk_hex)
            assert r.status == 200
        finally:
            ra.stop(expect_rc=0)
    finally:
        up.stop(expect_rc=0)


def test_mefctl_ca_init_name_constraints(mefd, tmp_path):
    conf = tmp_path / "nc.conf"
    conf.write_text(mefd.conf.read_text().replace(
        "[ca]\n", "[ca]\nname_constraints = permitted;URI:.example.net,permitted;DNS:example.net\n", 1))
    cp = harness.run([harness.MEFCTL, "-c", conf, "ca", "init", tmp_path / "newca"], check=True)
    assert "name constraints" in cp.stdout
    t = x509_text(tmp_path / "newca.crt")
    assert "X509v3 Name Constraints: critical" in t and "URI:.example.net" in t
    assert "CA:TRUE" in t and "Certificate Sign, CRL Sign" in t
    assert (tmp_path / "newca.key").stat().st_mode & 0o077 == 0
    # never overwrites
    cp = harness.run([harness.MEFCTL, "-c", conf, "ca", "init", tmp_path / "newca"])
    assert cp.returncode == 2


def test_crl_at_configured_path(mefd_factory, tmp_path):
    """[ca] crl_path moves the CRL; the default path is then unknown (4004)."""
    d = mefd_factory(start=False, extra="[ca]\ncrl_path = /pki/mef.crl\n")
    psk = "00112233445566778899aabbccddeeff"
    d.add_psk_client("crl-reader", "crl-reader@est.example.com", psk)
    d.start()
    kw = {"psk_identity": "crl-reader@est.example.com", "psk": psk}
    r = harness.https_s_client(d.ports["https_psk"], path="/pki/mef.crl", **kw)
    assert r.status == 200 and r.headers["content-type"] == "application/pkix-crl", r
    crl = tmp_path / "moved.crl"
    crl.write_bytes(r.body)
    assert ossl("crl", "-inform", "DER", "-in", crl, "-noout", "-CAfile", d.pki.ca.crt,
                check=False).returncode == 0
    r = harness.https_s_client(d.ports["https_psk"], path="/crl.der", **kw)
    assert r.status == 404 and r.rsc == 4004, r
