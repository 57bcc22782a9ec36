# SPDX-License-Identifier: BSD-2-Clause
"""Group commit keeps durability exact (docs/performance.md): under a
bootstrap storm on DTLS, coaps+tcp and HTTPS (TLS 1.3, where answers are
held for the commit), mefd is killed with SIGKILL; every KeID for which a
client got its 2.xx answer must be in the database. The KeIDs come from the
load generator's own OpenSSL exporter (hex(EKM[0..15]), TS-0003 10.3.4) and
the database is read with Python's sqlite3, so neither side is mefd's code.
The same for EST: every certificate a client received (its serial, read
from the PKCS#7 answer with Python's cryptography) must be in the certs
table."""

import base64
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs7

import harness

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "build-bench" / "bench"
SECRET = "6b6562617463682d64757261626c652d7465737421"
LIMITS = harness.LIMITS_LIFTED


@pytest.fixture(scope="module")
def bench():
    cp = subprocess.run(["make", "-s", "-f", "bench/bench.mk", "build-bench/bench"], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
    if cp.returncode != 0 or not BENCH.exists():
        pytest.skip(f"cannot build the load generator: {cp.stderr[-300:]}")
    return BENCH


def _storm_and_kill(m, runs_args, answered, want):
    """Starts one load generator per argument list, waits until answered has
    want lines (or 10 s), SIGKILLs mefd, stops the generators."""
    runs = []
    try:
        for args in runs_args:
            runs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if answered.exists() and len(answered.read_text().splitlines()) >= want:
                break
            time.sleep(0.1)
        os.kill(m.pid, signal.SIGKILL)
        m.proc.wait(timeout=10)
    finally:
        for r in runs:
            r.terminate()
            r.wait(timeout=10)
        m.stop(expect_rc=None)


def _post_storms(m, bench, post_args, bodies):
    """Three rounds on one store: the POST (post_args, after -P/-p) over HTTPS
    TLS 1.3 and 1.2 with every answer's body kept in bodies, next to a DTLS
    bootstrap storm that keeps the writer busy (rows then queue behind a
    commit in flight, which is when an answer sent too early is caught),
    SIGKILL each round."""
    for rnd in range(3):
        if rnd:
            m.start()
        posts = [[str(bench), "-P", "https", "-p", str(m.ports["https_psk"]), *tls, *post_args,
                  "-c", "8", "-t", "20", "-B", str(bodies)] for tls in (["-3"], [])]
        dtls = [str(bench), "-P", "dtls", "-p", str(m.ports["coap"]), "-g", SECRET, "-i",
                "s%lu@storm.example.com", "-r", "1000000", "-b", str(rnd * 1000000), "-c", "8",
                "-t", "20"]
        _storm_and_kill(m, posts + [dtls], bodies, 200 * (rnd + 1))


@pytest.mark.skipif(os.environ.get("MEFD_STORE") == "postgresql",
                    reason="reads the SQLite file; test_pg.py has the PostgreSQL SIGKILL storm")
def test_answered_ke_survive_sigkill(mefctl, pki, tmp_path, bench):
    m = harness.Mefd(tmp_path / "m", pki, extra=LIMITS)
    m.start()
    m.ctl("group", "add", "storm", "--pattern", "*@storm.example.com", "--secret-hex", SECRET)
    keids = tmp_path / "answered.txt"
    # three rounds on one store: an answer sent before its Ke's commit is lost
    # only when the kill lands in that window, so one round catches it about
    # half the time (a build that answers HTTPS before the commit: 2 of 4)
    for rnd in range(3):
        if rnd:
            m.start()
        _storm_and_kill(m, [[str(bench), "-P", proto, "-p", str(port), *extra, "-g", SECRET,
                             "-i", "s%lu@storm.example.com", "-r", "1000000", "-b",
                             str((3 * rnd + base) * 1000000), "-c", "6", "-t", "20",
                             "-E", str(keids)]
                            for base, (proto, port, extra) in enumerate(
                                (("dtls", m.ports["coap"], []),
                                 ("coap-tcp", m.ports["coap"], ["-3"]),
                                 ("https", m.ports["https_psk"], ["-3"])))], keids,
                        300 * (rnd + 1))
    answered = set(keids.read_text().split())
    assert len(answered) >= 300, "too few bootstraps answered before the kills"
    db = sqlite3.connect(str(m.db))
    stored = {row[0] for row in db.execute("SELECT keid FROM ke")}
    db.close()
    missing = answered - stored
    assert not missing, f"{len(missing)} answered KeIDs not on disk, e.g. {sorted(missing)[:3]}"


@pytest.mark.skipif(os.environ.get("MEFD_STORE") == "postgresql",
                    reason="reads the SQLite file; EST rows on PostgreSQL are written one by one")
def test_issued_certificates_survive_sigkill(mefctl, pki, tmp_path, bench):
    """EST simpleenroll storm on HTTPS TLS 1.3 and 1.2 (answers held for the
    certificate row's commit), SIGKILL, three rounds on the same store: every
    serial a client received is stored. A DTLS bootstrap storm keeps the writer
    busy, so certificate rows queue behind a commit in flight: that is when an
    answer sent too early is caught (SIGKILL keeps what the writer already
    handed to the kernel). A mutant answering before the commit fails about
    four rounds in five."""
    m = harness.Mefd(tmp_path / "m", pki, extra=LIMITS)
    m.start()
    m.ctl("client", "add", "est", "--psk-identity", "est@storm.example.com", "--psk-hex", SECRET)
    m.ctl("group", "add", "storm", "--pattern", "*@storm.example.com", "--secret-hex", SECRET)
    key, csr = tmp_path / "est.key", tmp_path / "est.der"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=est", "-addext",
                    "subjectAltName=URI:urn:x-onem2m-mef:client:est", "-outform", "DER",
                    "-out", csr], check=True, capture_output=True)
    body = base64.b64encode(csr.read_bytes()).decode()
    bodies = tmp_path / "answers.txt"
    _post_storms(m, bench, ["-m", "POST", "-u", "/.well-known/est/simpleenroll", "-d", body, "-T",
                            "application/pkcs10", "-k", SECRET, "-i", "est@storm.example.com",
                            "-r", "1", "-o", "est"], bodies)
    received = set()
    for line in bodies.read_text().split():
        for cert in pkcs7.load_der_pkcs7_certificates(base64.b64decode(line)):
            received.add(cert.serial_number)
    assert len(received) >= 150, "too few certificates issued before the kills"
    db = sqlite3.connect(str(m.db))
    stored = {int(row[0], 16) for row in db.execute("SELECT serial FROM certs")}
    db.close()
    missing = received - stored
    assert not missing, (f"{len(missing)} of {len(received)} certificates a client received are "
                         f"not on disk, e.g. {[f'{s:X}' for s in sorted(missing)[:3]]}")


@pytest.mark.skipif(os.environ.get("MEFD_STORE") == "postgresql",
                    reason="reads the SQLite file; key registrations on PostgreSQL commit alone")
def test_registered_keys_survive_sigkill(mefctl, pki, tmp_path, bench):
    """Key registrations (sec:mefKeyReg) join the group commit too: a storm of
    registrations of each session's exported key on HTTPS TLS 1.3 and 1.2
    next to a DTLS bootstrap storm, SIGKILL, three rounds: every
    relativeKeyID a client got its 2001 answer for is in mmef_keyreg."""
    m = harness.Mefd(tmp_path / "m", pki, extra=LIMITS)
    m.start()
    m.ctl("client", "add", "kr1", "--psk-identity", "kr1@storm.example.com", "--psk-hex", SECRET)
    m.ctl("group", "add", "storm", "--pattern", "*@storm.example.com", "--secret-hex", SECRET)
    kr = ["-k", SECRET, "-i", "kr1@storm.example.com", "-r", "1", "-o", "kr1"]
    reg = json.dumps({"sec:mefClientReg": {"et": "20991231T000000",
                                           "adminFQDN": "admin.example.com"}})
    subprocess.run([str(bench), "-P", "https", "-3", "-p", str(m.ports["https_psk"]), "-n", "1",
                    "-c", "1", "-m", "POST", "-u", "/mef", "-d", reg, "-T",
                    "application/vnd.onem2m-res+json; ty=60001", *kr], check=True,
                   capture_output=True, timeout=30)
    body = json.dumps({"sec:mefKeyReg": {"et": "20991231T000000", "adminFQDN": "admin.example.com",
                                         "SUID": 11, "targetIDs": ["maf"]}})
    bodies = tmp_path / "answers.txt"
    _post_storms(m, bench, ["-m", "POST", "-u", "/mef", "-d", body, "-T",
                            "application/vnd.onem2m-res+json; ty=60002", *kr], bodies)
    received = {json.loads(line)["sec:mefKeyReg"]["relativeKeyID"]
                for line in bodies.read_text().splitlines() if line.strip()}
    assert len(received) >= 150, "too few keys registered before the kills"
    db = sqlite3.connect(str(m.db))
    stored = {row[0] for row in db.execute("SELECT rel_id FROM mmef_keyreg")}
    db.close()
    missing = received - stored
    assert not missing, (f"{len(missing)} of {len(received)} registered keys a client was told "
                         f"about are not on disk, e.g. {sorted(missing)[:3]}")
