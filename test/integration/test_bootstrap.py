# SPDX-License-Identifier: BSD-2-Clause
"""Bootstrap (Enrolment Key generation, TS-0003 8.3.2.1 steps 3-4, 10.3.1,
10.3.4; decisions §1.1-§1.3) on every transport, checked against the keying
material that openssl s_client and gnutls-cli print for the same session:
the KeID and Ke that mefctl lists must be hex(EKM[0:16]).upper()@fqdn and
EKM[16:48]. Also the Bootstrap Instruction Configuration (Enrolee-ID,
expiry), revocation, and refused handshakes writing nothing."""

import itertools
import re
import time

import pytest

import harness
import rspf_util as u
from rspf_util import mefd  # noqa: F401  (the shared daemon, rate limits lifted)
from conftest import new_psk

LABEL = harness.BOOTSTRAP_LABEL
_seq = itertools.count(1)


def uniq(prefix):
    return "%s-%d-%s" % (prefix, next(_seq), u.rand_hex(3))


def psk_client(d, expiry="1h", **set_kw):
    """Registers a fresh PSK client; returns (client_id, identity, psk_hex)."""
    cid = uniq("dev")
    ident = cid + "@devices.example.com"
    _, key_hex = new_psk()
    d.add_psk_client(cid, ident, key_hex)
    args = ["client", "set", cid, "--expiry", expiry]
    for k, v in set_kw.items():
        args += ["--" + k.replace("_", "-"), v]
    d.ctl(*args)
    return cid, ident, key_hex


def cert_client(d, pki, expiry="1h"):
    """Registers a fresh certificate client; returns (client_id, crt, key)."""
    name = uniq("cse")
    san = "//example.net/" + name
    crt, key = u.make_client_cert(str(pki.ca.crt), str(pki.ca.key), str(d.dir), name,
                                  "URI:" + san)
    d.add_cert_client(san, san)
    d.ctl("client", "set", san, "--expiry", expiry)
    return san, crt, key


def hs_ok(r):
    """harness.TlsResult.ok, plus s_client's TLS 1.3 external-PSK report, which
    says "Reused, TLSv1.3, Cipher is ..." instead of "New, ..."."""
    if r.ok:
        return True
    return bool(r.keymat) and "Reused, TLSv1.3, Cipher is TLS_" in r.out and \
        "SSL_connect:SSLv3/TLS read finished" in r.err


def stamp_secs(s):
    return u.parse_stamp(s)


def check_oracle(d, before, keymat_hex, client_id, transport, expiry_s=3600):
    """The one new Ke of client_id equals the oracle's EKM split (decisions §1.1-§1.2)."""
    assert keymat_hex and len(keymat_hex) == 96, "client printed no keying material"
    ekm = bytes.fromhex(keymat_hex)
    got = u.wait_new_kes(d, before, client=client_id)
    assert len(got) == 1, "expected exactly one new Ke for %s, got %r\n%s" % (
        client_id, got, d.log()[-3000:])
    k = got[0]
    assert k["keID"] == u.keid_of(ekm, harness.FQDN)
    assert re.fullmatch(r"[0-9A-F]{32}@mef\.example\.com", k["keID"])
    assert k["ke"] == u.ke_of(ekm).hex()
    assert k["clientID"] == client_id
    assert k["transport"] == transport
    assert k["revoked"] is False
    created, expires = stamp_secs(k["created"]), stamp_secs(k["expirationTime"])
    assert abs(created - time.time()) < 30
    assert abs(expires - (created + expiry_s)) <= 2
    return k


# ------------------------------------------------------------------ oracles

PSK, CERT = "psk", "cert"

# (id, listener, s_client proto, credential, -cipher / -ciphersuites, transport)
S_CLIENT_CASES = [
    ("dtls-psk-ccm8", "coap", "dtls1_2", PSK, "PSK-AES128-CCM8", "dtls"),
    ("dtls-cert-ccm8", "coap", "dtls1_2", CERT, "ECDHE-ECDSA-AES128-CCM8", "dtls"),
    ("coaptcp-psk-tls12", "coap", "tls1_2", PSK, "PSK-AES128-CBC-SHA256", "coap+tls"),
    ("coaptcp-psk-tls13", "coap", "tls1_3", PSK, None, "coap+tls"),
    ("coaptcp-cert-tls12", "coap", "tls1_2", CERT, "ECDHE-ECDSA-AES128-SHA256", "coap+tls"),
    ("coaptcp-cert-tls13", "coap", "tls1_3", CERT, None, "coap+tls"),
    ("https-psk-tls12", "https_psk", "tls1_2", PSK, "PSK-AES128-CBC-SHA256", "https-psk"),
    ("https-psk-tls13", "https_psk", "tls1_3", PSK, None, "https-psk"),
    ("https-cert-tls12", "https_cert", "tls1_2", CERT, "ECDHE-ECDSA-AES128-SHA256",
     "https-cert"),
    ("https-cert-tls13", "https_cert", "tls1_3", CERT, None, "https-cert"),
]


@pytest.mark.parametrize("case", S_CLIENT_CASES, ids=[c[0] for c in S_CLIENT_CASES])
def test_oracle_s_client(mefd, pki, case):
    _, listener, proto, cred, cipher, transport = case
    if cred == PSK:
        cid, ident, key_hex = psk_client(mefd)
        kw = dict(psk_identity=ident, psk=key_hex)
    else:
        cid, crt, key = cert_client(mefd, pki)
        kw = dict(cert=crt, key=key, cafile=str(pki.ca.crt))
    if cipher:
        kw["cipher"] = cipher
    before = u.keids(mefd)
    # stdin is empty: the client closes right after the handshake, no request
    r = harness.s_client(mefd.ports[listener], proto, keymatexport=LABEL, **kw)
    assert hs_ok(r), "handshake failed: %s\n%s\n%s" % (r.err[-1500:], r.out[-1500:],
                                                  mefd.log()[-2000:])
    if cipher:
        assert r.cipher == cipher
    check_oracle(mefd, before, r.keymat, cid, transport)


# plain PSK key exchange: gnutls-cli 3.7.9 crashes after an ECDHE-PSK-CHACHA20
# handshake with mefd's CoAP/TLS endpoint (it prints nothing, exit 139)
GNUTLS_PSK12 = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+PSK"
GNUTLS_PSK13 = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-KX-ALL:+PSK:+ECDHE-PSK"
GNUTLS_CERT12 = "NORMAL:-VERS-ALL:+VERS-TLS1.2"
GNUTLS_CERT13 = "NORMAL:-VERS-ALL:+VERS-TLS1.3"

# (id, listener, credential, priority, transport)
GNUTLS_CASES = [
    ("https-psk-tls12", "https_psk", PSK, GNUTLS_PSK12, "https-psk"),
    ("https-psk-tls13", "https_psk", PSK, GNUTLS_PSK13, "https-psk"),
    ("https-cert-tls12", "https_cert", CERT, GNUTLS_CERT12, "https-cert"),
    ("https-cert-tls13", "https_cert", CERT, GNUTLS_CERT13, "https-cert"),
    ("coaptcp-psk-tls12", "coap", PSK, GNUTLS_PSK12, "coap+tls"),
    ("coaptcp-cert-tls13", "coap", CERT, GNUTLS_CERT13, "coap+tls"),
]


@pytest.mark.parametrize("case", GNUTLS_CASES, ids=[c[0] for c in GNUTLS_CASES])
def test_oracle_gnutls_cli(mefd, pki, case):
    _, listener, cred, prio, transport = case
    if cred == PSK:
        cid, ident, key_hex = psk_client(mefd)
        kw = dict(psk_user=ident, psk_hex=key_hex)
    else:
        cid, crt, key = cert_client(mefd, pki)
        kw = dict(cert=crt, key=key, cafile=str(pki.ca.crt))
    before = u.keids(mefd)
    r = harness.gnutls_cli(mefd.ports[listener], priority=prio, keymatexport=LABEL, **kw)
    assert hs_ok(r), "handshake failed:\n%s\n%s\n%s" % (r.out[-1500:], r.err[-1500:],
                                                   mefd.log()[-2000:])
    check_oracle(mefd, before, r.keymat, cid, transport)


def test_every_handshake_yields_a_new_ke(mefd):
    """decisions §1.3: two handshakes, two Ke; the older stays valid."""
    cid, ident, key_hex = psk_client(mefd)
    before = u.keids(mefd)
    r1 = harness.s_client(mefd.ports["https_psk"], "tls1_2", psk_identity=ident, psk=key_hex,
                          keymatexport=LABEL)
    r2 = harness.s_client(mefd.ports["coap"], "dtls1_2", psk_identity=ident, psk=key_hex,
                          keymatexport=LABEL)
    assert hs_ok(r1) and hs_ok(r2)
    got = u.wait_new_kes(mefd, before, n=2, client=cid)
    want = {u.keid_of(bytes.fromhex(r.keymat), harness.FQDN) for r in (r1, r2)}
    assert {k["keID"] for k in got} == want
    assert all(not k["revoked"] for k in got)


def test_dtls_answer_piggybacked_after_commit(mefd):
    """Group commit (docs/performance.md): the first request of a DTLS session
    waits for its Ke's commit, yet coap-client gets ONE piggy-backed answer,
    an ACK with the request's message ID: no empty ACK, no separate CON
    response, no retransmission, and the Ke is stored before the answer."""
    cid = uniq("pb")
    ident = cid + "@devices.example.com"
    ascii_key, key_hex = new_psk()
    mefd.add_psk_client(cid, ident, key_hex)
    for _ in range(6):
        before = u.keids(mefd)
        r = harness.coap_client(f"coaps://{harness.HOST}:{mefd.ports['coap']}/mef", "get",
                                psk_user=ident, psk_ascii=ascii_key)
        dump = r.out + "\n" + r.err
        req = re.findall(r"^v:1 t:CON c:GET i:([0-9a-f]{4}) ", dump, re.M)
        resp = re.findall(r"^v:1 t:(\w+) c:(\d\.\d\d) i:([0-9a-f]{4}) ", dump, re.M)
        assert len(req) == 1, "request sent more than once (retransmitted):\n" + dump
        assert resp == [("ACK", "2.05", req[0])], dump
        assert "retransmission" not in dump
        assert u.wait_new_kes(mefd, before, n=1, client=cid)


def test_coap_tcp_pipelined_requests_both_answered(mefd):
    """Two GETs sent with the handshake's first flight on one coaps+tcp
    session: both are held for the Ke's commit and both are answered (on TCP
    there are no message IDs, so the DTLS retransmission check must not
    take the second for a copy of the first)."""
    cid, ident, key_hex = psk_client(mefd)
    msg = (harness.CSM + harness.coap_tcp_encode("0.01", "/mef", token=b"\x01") +
           harness.coap_tcp_encode("0.01", "/mef", token=b"\x02"))
    for proto in ("tls1_2", "tls1_3"):
        r = harness.s_client_quiet(
            mefd.ports["coap"], proto, msg,
            lambda b: sum(not m.code.startswith("7.") for m in harness.coap_tcp_frames(b)) >= 2,
            psk_identity=ident, psk=key_hex, timeout=5)
        answers = [m.code for m in harness.coap_tcp_frames(r.data) if not m.code.startswith("7.")]
        assert answers == ["2.05", "2.05"], (proto, answers)


def test_secrets_only_with_show_secrets(mefd):
    cid, ident, key_hex = psk_client(mefd)
    r = harness.s_client(mefd.ports["https_psk"], "tls1_2", psk_identity=ident, psk=key_hex,
                         keymatexport=LABEL)
    assert hs_ok(r)
    ke_hex = u.ke_of(bytes.fromhex(r.keymat)).hex()
    u.wait_new_kes(mefd, set(), client=cid)
    plain = mefd.ctl("ke", "list", "--json", "--client", cid).stdout
    assert "\"ke\"" not in plain and ke_hex not in plain.lower()
    for k in u.ke_list(mefd, client=cid):
        assert "ke" not in k
        for field in ("keID", "clientID", "enroleeID", "transport", "created",
                      "expirationTime", "revoked"):
            assert field in k
    text = mefd.ctl("ke", "list", "--client", cid).stdout
    assert ke_hex not in text.lower()
    assert key_hex not in mefd.log().lower()
    assert ke_hex not in mefd.log().lower()


# ------------------------------------------------- Bootstrap Instruction Configuration

def test_instruction_configuration(mefd):
    """client set --enrolee-id/--target/--expiry: the Ke carries the Enrolee-ID
    and expires creation + expiry."""
    cid, ident, key_hex = psk_client(mefd, expiry="2h", enrolee_id="C-dev-cse-77",
                                     target="maf.example.com:21")
    before = u.keids(mefd)
    r = harness.s_client(mefd.ports["coap"], "dtls1_2", psk_identity=ident, psk=key_hex,
                         cipher="PSK-AES128-CCM8", keymatexport=LABEL)
    assert hs_ok(r)
    k = check_oracle(mefd, before, r.keymat, cid, "dtls", expiry_s=7200)
    assert k["enroleeID"] == "C-dev-cse-77"


def test_default_enrolee_id_is_client_id(mefd):
    cid, ident, key_hex = psk_client(mefd)
    before = u.keids(mefd)
    r = harness.s_client(mefd.ports["https_psk"], "tls1_3", psk_identity=ident, psk=key_hex,
                         keymatexport=LABEL)
    assert hs_ok(r)
    k = check_oracle(mefd, before, r.keymat, cid, "https-psk")
    assert k["enroleeID"] == cid


def test_default_expiry_is_config(mefd):
    """Without --expiry the Ke lives [mef] enrolment_expiry (30d in the harness)."""
    cid = uniq("dflt")
    ident = cid + "@devices.example.com"
    _, key_hex = new_psk()
    mefd.add_psk_client(cid, ident, key_hex)
    before = u.keids(mefd)
    r = harness.s_client(mefd.ports["https_psk"], "tls1_2", psk_identity=ident, psk=key_hex,
                         keymatexport=LABEL)
    assert hs_ok(r)
    check_oracle(mefd, before, r.keymat, cid, "https-psk", expiry_s=30 * 86400)


def test_revoke(mefd):
    cid, ident, key_hex = psk_client(mefd)
    before = u.keids(mefd)
    r = harness.s_client(mefd.ports["https_psk"], "tls1_2", psk_identity=ident, psk=key_hex,
                         keymatexport=LABEL)
    assert hs_ok(r)
    k = check_oracle(mefd, before, r.keymat, cid, "https-psk")
    mefd.ctl("ke", "revoke", k["keID"])
    after = [x for x in u.ke_list(mefd, client=cid) if x["keID"] == k["keID"]]
    assert len(after) == 1 and after[0]["revoked"] is True
    # case-insensitive KeID (decisions §1.2): revoking again by lower case is not "not found"
    cp = mefd.ctl("ke", "revoke", k["keID"].lower(), check=False)
    assert cp.returncode in (0, 2)
    cp = mefd.ctl("ke", "revoke", "00" * 16 + "@" + harness.FQDN, check=False)
    assert cp.returncode == 2


# ------------------------------------------------------------ refusals

def _refused(d, attempt, secrets, reason_re, what="", client_may_finish=False):
    """attempt() must fail; nothing stored; a log line with the reason; no secret logged.
    client_may_finish: the TLS library completes the handshake and mefd refuses
    right after it: libmicrohttpd and libcoap's DTLS verify client certificates
    only then, and a TLS 1.3 server that rejects the PSK falls back to a
    certificate handshake the client finishes before it is refused."""
    before = u.ke_list(d, secrets=True)
    mark = u.log_mark(d)
    ok = attempt()
    assert client_may_finish or not ok, "%s: handshake unexpectedly succeeded\n%s" % (
        what, u.log_since(d, mark))
    time.sleep(0.3)
    assert u.ke_list(d, secrets=True) == before, what
    new = u.log_since(d, mark)
    lines = [ln for ln in new.splitlines() if "handshake refused" in ln]
    assert len(lines) == 1, "%s: want one 'handshake refused' line, log:\n%s" % (what, new)
    assert re.search(reason_re, lines[0], re.I), "%s: reason not %r: %s" % (what, reason_re,
                                                                          lines[0])
    for s in secrets:
        assert s.lower() not in new.lower(), "secret in the log:\n" + new


def test_refused_unknown_identity(mefd):
    _, key_hex = new_psk()
    ident = uniq("nobody") + "@devices.example.com"
    for listener, proto in (("coap", "dtls1_2"), ("https_psk", "tls1_2"), ("coap", "tls1_3")):
        _refused(mefd, lambda: hs_ok(harness.s_client(mefd.ports[listener], proto,
                                                psk_identity=ident, psk=key_hex)),
                 [key_hex], r"refused.*(unknown|not registered|no such|identity)",
                 what="%s %s" % (listener, proto), client_may_finish=proto == "tls1_3")


def test_refused_wrong_key(mefd):
    """A wrong Kpm fails the handshake itself: no Ke, a log line, no key logged."""
    cid, ident, key_hex = psk_client(mefd)
    _, wrong = new_psk()
    for listener, proto in (("https_psk", "tls1_2"), ("coap", "tls1_2"), ("coap", "dtls1_2")):
        _refused(mefd, lambda: hs_ok(harness.s_client(mefd.ports[listener], proto,
                                                psk_identity=ident, psk=wrong)),
                 [key_hex, wrong], r"refused: \S", what="%s %s" % (listener, proto))


def test_refused_disabled_client(mefd, pki):
    cid, ident, key_hex = psk_client(mefd)
    mefd.ctl("client", "disable", cid)
    for listener, proto in (("coap", "dtls1_2"), ("https_psk", "tls1_3"), ("coap", "tls1_2")):
        _refused(mefd, lambda: hs_ok(harness.s_client(mefd.ports[listener], proto,
                                                psk_identity=ident, psk=key_hex)),
                 [key_hex], r"refused.*disabled", what="%s %s" % (listener, proto))
    mefd.ctl("client", "enable", cid)
    before = u.keids(mefd)
    r = harness.s_client(mefd.ports["coap"], "dtls1_2", psk_identity=ident, psk=key_hex,
                         keymatexport=LABEL)
    assert hs_ok(r)
    check_oracle(mefd, before, r.keymat, cid, "dtls")

    san, crt, key = cert_client(mefd, pki)
    mefd.ctl("client", "disable", san)
    _refused(mefd, lambda: hs_ok(harness.s_client(mefd.ports["https_cert"], "tls1_2", cert=crt,
                                            key=key, cafile=str(pki.ca.crt))),
             [], r"refused.*disabled", what="https_cert", client_may_finish=True)


def test_disable_seen_after_cached_handshakes(mefd):
    """The client cache ([store] client_cache) keeps a client that just handshook; mefctl
    disabling it must still refuse its very next handshake, and enabling it let it back."""
    cid, ident, key_hex = psk_client(mefd)
    for _ in range(2):
        assert hs_ok(harness.s_client(mefd.ports["coap"], "dtls1_2", psk_identity=ident,
                                      psk=key_hex))
    mefd.ctl("client", "disable", cid)
    _refused(mefd, lambda: hs_ok(harness.s_client(mefd.ports["https_psk"], "tls1_3",
                                            psk_identity=ident, psk=key_hex)),
             [key_hex], r"refused.*disabled", what="https_psk tls1_3")
    mefd.ctl("client", "enable", cid)
    assert hs_ok(harness.s_client(mefd.ports["coap"], "dtls1_2", psk_identity=ident, psk=key_hex))


def test_refused_unregistered_certificate(mefd, pki):
    """A certificate from the right CA whose SAN no client registered."""
    name = uniq("stranger")
    crt, key = u.make_client_cert(str(pki.ca.crt), str(pki.ca.key), str(mefd.dir), name,
                                  "URI://example.net/" + name)
    for listener, proto in (("https_cert", "tls1_2"), ("coap", "dtls1_2")):
        _refused(mefd, lambda: hs_ok(harness.s_client(mefd.ports[listener], proto, cert=crt, key=key,
                                                cafile=str(pki.ca.crt))),
                 [], r"refused.*(subjectAltName|not registered|unknown)",
                 what="%s %s" % (listener, proto), client_may_finish=True)
