# SPDX-License-Identifier: BSD-2-Clause
"""Secret hygiene: after a realistic run at log level debug (mefctl adds with
known PSKs, bootstraps on every transport, fetches by an Enrolment Target),
no secret the run used appears in mefd's log or in the database files
(main file, -wal, -shm), in any encoding we can think of: raw bytes, hex in
both cases, base64. Also: key files readable by others are refused."""

import base64
import json
import os
import time

import pytest

import harness
import rspf_util as u
from conftest import new_psk
from harness import BOOTSTRAP_LABEL, FQDN


def encodings(b):
    """Every spelling of secret bytes b we search for."""
    out = {b, b.hex().encode(), b.hex().upper().encode(), base64.b64encode(b),
           base64.urlsafe_b64encode(b).rstrip(b"=")}
    return {e for e in out if len(e) >= 16}


def db_files(d):
    return [p for p in (d.db, d.db.with_name(d.db.name + "-wal"),
                        d.db.with_name(d.db.name + "-shm")) if p.exists()]


def scan(d, secrets):
    """(name, file) of every secret found in the log or the database files."""
    found = []
    blobs = {"log": d.logpath.read_bytes()}
    for p in db_files(d):
        blobs[p.name] = p.read_bytes()
    for name, raw in secrets.items():
        for e in encodings(raw):
            for where, blob in blobs.items():
                if e in blob:
                    found.append((name, where))
    return found


def bootstrap(d, port, proto, **kw):
    r = harness.s_client(port, proto, keymatexport=BOOTSTRAP_LABEL, **kw)
    assert r.ok and len(r.keymat) == 96, r.err[-1000:]
    return bytes.fromhex(r.keymat)


def test_no_secret_in_logs_or_database(mefd_factory, pki):
    d = mefd_factory(level="debug")
    secrets = {}
    # clients added with known PSKs (mefctl), one of them an Enrolment Target
    enrolee_ascii, enrolee_hex = new_psk()
    target_ascii, target_hex = new_psk()
    d.add_psk_client("enrolee", "enrolee@" + FQDN, enrolee_hex)
    d.add_psk_client("target.example.com", "target@" + FQDN, target_hex)
    d.set_targets("enrolee", "target.example.com:21", "target.example.com:31")
    cert = pki.clients["cse1"]
    d.add_cert_client(cert.san, cert.san)
    secrets["psk enrolee"] = enrolee_ascii.encode()
    secrets["psk target"] = target_ascii.encode()

    psk = dict(psk_identity="enrolee@" + FQDN, psk=enrolee_hex)
    ekms = {
        "dtls": bootstrap(d, d.ports["coap"], "dtls1_2", cipher="PSK-AES128-CCM8", **psk),
        "coap+tls": bootstrap(d, d.ports["coap"], "tls1_3", **psk),
        "https-psk": bootstrap(d, d.ports["https_psk"], "tls1_2",
                               cipher="PSK-AES128-GCM-SHA256", **psk),
        "https-cert": bootstrap(d, d.ports["https_cert"], "tls1_2", cert=str(cert.crt),
                                key=str(cert.key), cafile=str(pki.ca.crt)),
    }
    # the Ke is stored at handshake end, which a TLS 1.3 client may not wait for
    want = {u.keid_of(ekm, FQDN) for ekm in ekms.values()}
    deadline = time.monotonic() + 10
    while not want <= set(u.keids(d)) and time.monotonic() < deadline:
        time.sleep(0.1)
    kes = {k["keID"]: k for k in u.ke_list(d, secrets=True)}
    for tr, ekm in ekms.items():
        assert u.keid_of(ekm, FQDN) in kes, f"{tr} bootstrap stored no Ke"
        secrets[f"Ke {tr}"] = u.ke_of(ekm)
        secrets[f"EKM {tr}"] = ekm

    # fetches by the target: every kdf, both SUIDs, HTTPS and CoAP
    keid = u.keid_of(ekms["dtls"], FQDN)
    for path in (f"/fetchCredentials/{keid}/21", f"/fetchCredentials/{keid}/31?kdf=km",
                 f"/fetchCredentials/{keid}/21?kdf=kpsa"):
        r = harness.https_s_client(d.ports["https_psk"], path=path, proto="tls1_2",
                                   cipher="PSK-AES128-GCM-SHA256",
                                   psk_identity="target@" + FQDN, psk=target_hex)
        assert r.status == 200, (path, r.status, r.body)
        cred = base64.b64decode(json.loads(r.body)["credential"])
        secrets[f"credential {path}"] = cred
    c = harness.coap_s_client(d.ports["coap"], path=f"/fetchCredentials/{keid}/21",
                              proto="dtls1_2", cipher="PSK-AES128-CCM8",
                              psk_identity="target@" + FQDN, psk=target_hex)
    assert c is not None and c.code == "2.05", c
    # the oracle: what was fetched is the TS-0003 10.3.7 derivation of that Ke
    assert secrets[f"credential /fetchCredentials/{keid}/21"] == u.usage_constrained(
        u.ke_of(ekms["dtls"]), 21, "target.example.com")

    # the scan must be able to find things: the KeID (not secret) is logged
    assert keid.encode() in d.logpath.read_bytes()
    found = scan(d, secrets)
    assert not found, f"secrets found while running: {found}"
    d.stop(expect_rc=0)
    found = scan(d, secrets)
    assert not found, f"secrets found after stop: {found}"


@pytest.mark.parametrize("which", ["kek", "tls_key", "ca_key"])
def test_key_file_readable_by_others_refused(mefd_factory, pki, tmp_path, which):
    d = mefd_factory(start=False)
    text = d.conf.read_text()
    src = {"kek": d.dir / "kek", "tls_key": pki.mef.key, "ca_key": pki.ca.key}[which]
    loose = tmp_path / f"loose-{which}"
    loose.write_bytes(open(src, "rb").read())
    os.chmod(loose, 0o644)
    d.write_conf(text=text.replace(str(src), str(loose)))
    assert str(loose) in d.conf.read_text()
    cp = harness.run([harness.MEFD, "-c", d.conf, "--check-config"], timeout=10)
    assert cp.returncode != 0
    assert "group or others" in cp.stdout + cp.stderr, cp.stdout + cp.stderr
    os.chmod(loose, 0o600)
    cp = harness.run([harness.MEFD, "-c", d.conf, "--check-config"], timeout=10)
    assert "group or others" not in cp.stdout + cp.stderr
