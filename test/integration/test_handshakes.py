# SPDX-License-Identifier: BSD-2-Clause
"""Every listener against third-party clients (decisions §2): each mandatory
suite completes a handshake and serves one GET /mef; nothing below TLS 1.2;
wrong or unknown PSKs and missing, untrusted or expired client certificates
are refused; PSKs added or removed with mefctl apply without a restart."""

import json
import time

import pytest

import harness
from conftest import new_psk
from harness import (BOOTSTRAP_LABEL, FQDN, OPT_M2M_RQI, coap_client, coap_s_client,
                     curl, gnutls_cli, https_s_client, s_client)

# oneM2M requests carry oneM2M-RQI (TS-0008), and only they get oneM2M-RSC back:
# 307 is critical, so mefd leaves it out for plain CoAP clients (test below).
RQI = [(OPT_M2M_RQI, b"hs-1")]


def psk_kw(e, identity=None, key=None):
    return {"psk_identity": identity or e.psk_identity, "psk": key or e.psk_hex}


def cert_kw(pki, c=None):
    c = c or pki.clients["cse1"]
    return {"cert": c.crt, "key": c.key, "cafile": pki.ca.crt}


def assert_coap_ok(r):
    assert r is not None, "no CoAP response"
    assert r.code == "2.05", r
    assert r.rsc == 2000, f"oneM2M-RSC {r.rsc}"


def test_plain_coap_client_gets_no_critical_onem2m_option(mefd):
    """A request without oneM2M options is answered without oneM2M-RSC (307,
    critical), so a generic client such as coap-client-openssl keeps the answer."""
    e = mefd.enrolees
    r = coap_s_client(mefd.ports["coap"], proto="dtls1_2", options=[], **psk_kw(e))
    assert r is not None and r.code == "2.05", r
    assert r.rsc is None, f"unexpected oneM2M-RSC {r.rsc}"
    for scheme in ("coaps", "coaps+tcp"):
        c = coap_client(f"{scheme}://{harness.HOST}:{mefd.ports['coap']}/mef",
                        psk_user=e.psk_identity, psk_ascii=e.psk_ascii)
        assert c.code == "2.05" and not c.dropped, (scheme, c.err[-800:])


def assert_http_ok(r):
    assert r.tls.ok, r.tls.err[-500:]
    assert r.status == 200, (r.status, r.body[:300])
    assert r.rsc == 2000, r.headers


# ---------------------------------------------------------------- CoAP over DTLS (udp)

def test_dtls_psk_ccm8(mefd):
    e, port = mefd.enrolees, mefd.ports["coap"]
    t = s_client(port, "dtls1_2", cipher="PSK-AES128-CCM8", **psk_kw(e))
    assert t.ok and t.cipher == "PSK-AES128-CCM8", t.err[-500:]
    assert_coap_ok(coap_s_client(port, proto="dtls1_2", cipher="PSK-AES128-CCM8",
                                 options=RQI, **psk_kw(e)))
    r = coap_client(f"coaps://{harness.HOST}:{port}/mef", psk_user=e.psk_identity,
                    psk_ascii=e.psk_ascii)
    assert r.code == "2.05", r.err[-800:]


def test_dtls_ecdsa_ccm8(mefd, pki):
    port = mefd.ports["coap"]
    t = s_client(port, "dtls1_2", cipher="ECDHE-ECDSA-AES128-CCM8", **cert_kw(pki))
    assert t.ok and t.cipher == "ECDHE-ECDSA-AES128-CCM8", t.err[-500:]
    assert_coap_ok(coap_s_client(port, proto="dtls1_2", cipher="ECDHE-ECDSA-AES128-CCM8",
                                 options=RQI, **cert_kw(pki)))
    c = pki.clients["cse1"]
    r = coap_client(f"coaps://{harness.HOST}:{port}/mef", cert=c.crt, key=c.key,
                    cafile=pki.ca.crt)
    assert r.code == "2.05", r.err[-800:]


def test_dtls_gnutls_psk(mefd):
    e = mefd.enrolees
    g = gnutls_cli(mefd.ports["coap"], udp=True, psk_user=e.psk_identity, psk_hex=e.psk_hex,
                   priority="NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CCM-8")
    assert g.ok, g.out[-800:]


@pytest.mark.parametrize("proto", ["dtls1_2", "tls1_2"])
def test_coap_onem2m_options_understood(mefd, pki, proto):
    """oneM2M-RQI (283) and oneM2M-FR (279) are critical options (odd numbers):
    mefd must understand them, not answer 4.02 Bad Option, and echo the RQI."""
    c = pki.clients["cse1"]
    opts = [(OPT_M2M_RQI, b"rq-7"), (harness.OPT_M2M_FR, c.san.encode())]
    r = coap_s_client(mefd.ports["coap"], proto=proto, options=opts, **cert_kw(pki))
    assert_coap_ok(r)
    assert r.opt(OPT_M2M_RQI) == b"rq-7"


# ---------------------------------------------------------------- CoAP over TLS (tcp, RFC 8323)

COAP_TCP = [
    ("tls1_2", "psk", {"cipher": "PSK-AES128-CBC-SHA256"}),
    ("tls1_2", "cert", {"cipher": "ECDHE-ECDSA-AES128-SHA256"}),
    ("tls1_3", "cert", {"ciphersuites": "TLS_AES_128_GCM_SHA256"}),
]


@pytest.mark.parametrize("proto,cred,suite", COAP_TCP,
                         ids=[f"{p}-{c}-{list(s.values())[0]}" for p, c, s in COAP_TCP])
def test_coap_tcp_suites(mefd, pki, proto, cred, suite):
    port = mefd.ports["coap"]
    kw = psk_kw(mefd.enrolees) if cred == "psk" else cert_kw(pki)
    t = s_client(port, proto, **suite, **kw)
    assert t.ok, t.err[-500:]
    if "cipher" in suite:
        assert t.cipher == suite["cipher"]
    else:
        assert t.protocol == "TLSv1.3"
    assert_coap_ok(coap_s_client(port, proto=proto, options=RQI, **suite, **kw))


def test_coap_tcp_coap_client(mefd):
    e = mefd.enrolees
    r = coap_client(f"coaps+tcp://{harness.HOST}:{mefd.ports['coap']}/mef",
                    psk_user=e.psk_identity, psk_ascii=e.psk_ascii)
    assert r.code == "2.05", r.err[-800:]


# ---------------------------------------------------------------- HTTPS

def test_https_psk_tls12(mefd):
    r = https_s_client(mefd.ports["https_psk"], proto="tls1_2", cipher="PSK-AES128-CBC-SHA256",
                       **psk_kw(mefd.enrolees))
    assert_http_ok(r)
    assert r.tls.cipher == "PSK-AES128-CBC-SHA256"
    assert r.headers.get("x-m2m-ri") == "rq-1"


def test_https_psk_tls13(mefd):
    r = https_s_client(mefd.ports["https_psk"], proto="tls1_3",
                       ciphersuites="TLS_AES_128_GCM_SHA256", **psk_kw(mefd.enrolees))
    assert_http_ok(r)
    assert r.tls.protocol == "TLSv1.3"


@pytest.mark.parametrize("vers", ["TLS1.2", "TLS1.3"])
def test_https_psk_gnutls(mefd, vers):
    e = mefd.enrolees
    g = gnutls_cli(mefd.ports["https_psk"], psk_user=e.psk_identity, psk_hex=e.psk_hex,
                   priority=f"NORMAL:-VERS-ALL:+VERS-{vers}:-KX-ALL:+PSK:+ECDHE-PSK")
    assert g.ok, g.out[-800:] + g.err[-400:]


def test_https_cert_tls12(mefd, pki):
    r = https_s_client(mefd.ports["https_cert"], proto="tls1_2",
                       cipher="ECDHE-ECDSA-AES128-SHA256", **cert_kw(pki))
    assert_http_ok(r)
    assert r.tls.cipher == "ECDHE-ECDSA-AES128-SHA256"


def test_https_cert_tls13(mefd, pki):
    r = https_s_client(mefd.ports["https_cert"], proto="tls1_3", **cert_kw(pki))
    assert_http_ok(r)
    assert r.tls.protocol == "TLSv1.3"


def test_https_cert_curl_and_gnutls(mefd, pki):
    c = pki.clients["ae1"]
    r = curl(mefd.ports["https_cert"], cert=c.crt, key=c.key, cafile=pki.ca.crt)
    assert r.status == 200 and r.rsc == 2000, (r.status, r.headers, r.tls.err)
    g = gnutls_cli(mefd.ports["https_cert"], cert=c.crt, key=c.key, cafile=pki.ca.crt)
    assert g.ok, g.out[-800:]


# ---------------------------------------------------------------- nothing below TLS 1.2

@pytest.mark.parametrize("listener,proto", [("https_psk", "tls1_1"), ("https_cert", "tls1_1"),
                                            ("coap", "tls1_1"), ("coap", "dtls1")])
def test_old_protocols_refused(mefd, pki, listener, proto):
    kw = cert_kw(pki) if listener == "https_cert" else psk_kw(mefd.enrolees)
    t = s_client(mefd.ports[listener], proto, timeout=4, **kw)
    assert not t.ok, t.out[-500:]


@pytest.mark.parametrize("proto", ["dtls1_2", "tls1_2"])
def test_coap_suites_hold_after_many_sessions(mefd, proto):
    """The CoAP listener puts its suites on libcoap's SSL_CTX once and later
    sessions inherit them (docs/performance.md): after a good handshake, a
    suite outside decisions §2 (PSK-AES256-CBC-SHA) and TLS 1.1 are still
    refused, and a mandatory suite still works."""
    kw = psk_kw(mefd.enrolees)
    good = "PSK-AES128-CCM8" if proto == "dtls1_2" else "PSK-AES128-CBC-SHA256"
    for _ in range(3):
        assert s_client(mefd.ports["coap"], proto, cipher=good, **kw).ok
    assert not s_client(mefd.ports["coap"], proto, cipher="PSK-AES256-CBC-SHA", timeout=4,
                        **kw).ok
    if proto == "tls1_2":
        assert not s_client(mefd.ports["coap"], "tls1_1", timeout=4, **kw).ok
    assert s_client(mefd.ports["coap"], proto, cipher=good, **kw).ok


# ---------------------------------------------------------------- refusals

def _psk_attempt(mefd, listener, identity, key_hex):
    """True if a PSK session served GET /mef successfully."""
    if listener == "https_psk":
        r = https_s_client(mefd.ports["https_psk"], proto="tls1_2",
                           cipher="PSK-AES128-CBC-SHA256", psk_identity=identity, psk=key_hex,
                           timeout=4)
        return r.status == 200
    proto, cipher = {"coap-udp": ("dtls1_2", "PSK-AES128-CCM8"),
                     "coap-tcp": ("tls1_2", "PSK-AES128-CBC-SHA256")}[listener]
    r = coap_s_client(mefd.ports["coap"], proto=proto, cipher=cipher, psk_identity=identity,
                      psk=key_hex, timeout=3)
    return r is not None and r.code.startswith("2.")


PSK_LISTENERS = ["coap-udp", "coap-tcp", "https_psk"]


@pytest.mark.parametrize("listener", PSK_LISTENERS)
def test_wrong_psk_refused(mefd, listener):
    e = mefd.enrolees
    _, wrong = new_psk()
    assert not _psk_attempt(mefd, listener, e.psk_identity, wrong)


@pytest.mark.parametrize("listener", PSK_LISTENERS)
def test_unknown_identity_refused(mefd, listener):
    assert not _psk_attempt(mefd, listener, "nobody@mef.example.com", mefd.enrolees.psk_hex)


def _cert_attempt(mefd, pki, listener, cert):
    """True if a certificate session (cert None = no client cert) served GET /mef."""
    kw = {"cafile": pki.ca.crt}
    if cert is not None:
        kw.update(cert=cert.crt, key=cert.key)
    if listener == "https_cert":
        r = https_s_client(mefd.ports["https_cert"], proto="tls1_2", timeout=4, **kw)
        return r.status == 200
    proto = "dtls1_2" if listener == "coap-udp" else "tls1_2"
    r = coap_s_client(mefd.ports["coap"], proto=proto, timeout=3, **kw)
    return r is not None and r.code.startswith("2.")


CERT_LISTENERS = ["coap-udp", "coap-tcp", "https_cert"]


@pytest.mark.parametrize("listener", CERT_LISTENERS)
@pytest.mark.parametrize("which", ["missing", "untrusted", "expired"])
def test_bad_client_cert_refused(mefd, pki, listener, which):
    cert = {"missing": None, "untrusted": pki.rogue, "expired": pki.expired}[which]
    if which == "expired":
        mefd.ctl("client", "add", pki.expired.san, "--cert-san", pki.expired.san, check=False)
    assert not _cert_attempt(mefd, pki, listener, cert)


@pytest.mark.parametrize("listener", CERT_LISTENERS)
def test_unregistered_client_cert_refused(mefd, pki, listener, tmp_path):
    """A valid certificate from the trusted CA whose SAN no client has."""
    c = harness.Cert(*harness._issue(tmp_path, "stranger", (pki.ca.crt, pki.ca.key),
                                     "URI://example.net/stranger", "clientAuth"))
    assert not _cert_attempt(mefd, pki, listener, c)


@pytest.mark.parametrize("listener", CERT_LISTENERS)
@pytest.mark.parametrize("which", ["server-only EKU", "not yet valid"])
def test_registered_client_cert_refused(mefd, pki, listener, which, tmp_path):
    """A certificate from the trusted CA whose SAN is a registered client, but
    whose EKU allows only serverAuth, or whose validity starts in 2090: the
    chain check itself refuses it (httpb verifies the chain in
    tls_gnutls_verify_chain, not gnutls_certificate_verify_peers)."""
    name = "srvonly" if which == "server-only EKU" else "future"
    san = f"//example.net/{name}"
    eku, dates = ("serverAuth", ()) if name == "srvonly" else \
        ("clientAuth", ("20900101000000Z", "20910101000000Z"))
    c = harness.Cert(*harness._issue(tmp_path, name, (pki.ca.crt, pki.ca.key), f"URI:{san}", eku,
                                     *dates), san)
    mefd.ctl("client", "add", name, "--cert-san", san, check=False)
    assert not _cert_attempt(mefd, pki, listener, c)


@pytest.mark.parametrize("listener", CERT_LISTENERS)
def test_good_client_cert_accepted(mefd, pki, listener):
    """The positive twin of the refusal tests, through the same helper."""
    assert _cert_attempt(mefd, pki, listener, pki.clients["cse2"])


def test_coap_client_ca_bundle_keeps_every_ca(pki, tmp_path):
    """coapb hands libcoap its certificate, key and first CA as DER
    (docs/performance.md) and adds the other CAs of client_ca itself: a client
    of either CA of a two-CA bundle is served on DTLS and coaps+tcp."""
    bundle = tmp_path / "cas.pem"
    bundle.write_text(open(pki.ca.crt).read() + open(pki.rogue_ca.crt).read())
    d = harness.Mefd(tmp_path / "m", pki)
    d.write_conf(text=d.conf.read_text().replace(f"client_ca = {pki.ca.crt}",
                                                 f"client_ca = {bundle}"))
    d.start()
    try:
        d.add_cert_client("cse1", pki.rogue.san)
        d.add_cert_client("cse2", pki.clients["cse2"].san)
        assert "kept as PEM files" not in d.log()
        for listener in ("coap-udp", "coap-tcp"):
            for cert in (pki.rogue, pki.clients["cse2"]):
                assert _cert_attempt(d, pki, listener, cert), (listener, cert.san, d.log()[-1500:])
    finally:
        d.stop()


# ---------------------------------------------------------------- live credential changes

def test_psk_added_and_removed_without_restart(mefd):
    ascii_key, hex_key = new_psk()
    ident = "live@mef.example.com"
    pid = mefd.pid
    for lst in PSK_LISTENERS:
        assert not _psk_attempt(mefd, lst, ident, hex_key), f"{lst} accepted before add"
    mefd.add_psk_client("live", ident, hex_key)
    for lst in PSK_LISTENERS:
        assert _psk_attempt(mefd, lst, ident, hex_key), f"{lst} refused after add"
    r = coap_client(f"coaps://{harness.HOST}:{mefd.ports['coap']}/mef", psk_user=ident,
                    psk_ascii=ascii_key)
    assert r.code == "2.05", r.err[-500:]
    mefd.remove_client("live")
    for lst in PSK_LISTENERS:
        assert not _psk_attempt(mefd, lst, ident, hex_key), f"{lst} accepted after remove"
    assert mefd.pid == pid and mefd.alive()


# ---------------------------------------------------------------- bootstrap key export

@pytest.mark.parametrize("listener,proto,cipher", [
    ("coap", "dtls1_2", "PSK-AES128-CCM8"),
    ("coap", "tls1_2", "PSK-AES128-CBC-SHA256"),
    ("https_psk", "tls1_2", "PSK-AES128-CBC-SHA256"),
    ("https_psk", "tls1_3", None),
])
def test_bootstrap_keid_matches_exporter(mefd, listener, proto, cipher):
    """decisions §1: KeID = UPPER-hex(EKM[0..15]) "@" fqdn, where EKM is what
    s_client exports with EXPORTER-oneM2M-Bootstrap and no context."""
    e = mefd.enrolees
    kw = {"cipher": cipher} if cipher else {"ciphersuites": "TLS_AES_128_GCM_SHA256"}
    t = s_client(mefd.ports[listener], proto, keymatexport=BOOTSTRAP_LABEL, **kw, **psk_kw(e))
    assert t.ok and len(t.keymat) == 96, t.err[-500:]
    keid = f"{t.keymat[:32]}@{FQDN}"
    ke = t.keymat[32:]
    for _ in range(20):
        cp = mefd.ctl("ke", "list", "--client", "psk1", "--json", "--show-secrets")
        rows = {r["keID"].upper(): r for r in json.loads(cp.stdout or "[]")}
        if keid.upper() in rows:
            break
        time.sleep(0.1)
    assert keid.upper() in rows, f"{keid} not in {list(rows)}"
    assert rows[keid.upper()]["ke"].upper() == ke
    assert rows[keid.upper()]["clientID"] == "psk1"
