# SPDX-License-Identifier: BSD-2-Clause
"""Scale-out (docs/scale-out.md): two mefd instances on one PostgreSQL
database, started here from Debian's postgresql-15 (pg_util.py). A device
bootstraps on A and its target fetches from B; a key registered on A is
retrieved on B; a certificate revoked through A is refused by B; concurrent
requests on both never share an identifier; A is SIGKILLed during a
bootstrap storm and every Ke a client got an answer for is in the database
while B keeps serving; `mefctl migrate` copies a SQLite installation.
Expected keys come from Python hmac over the EKM that openssl printed."""

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time

import pytest

import harness
import pg_util
import rspf_util as u
from conftest import Enrolees, new_psk

LABEL = harness.BOOTSTRAP_LABEL
MAF = "maf.example.com"
ADMIN = "admin.example.com"
TY_REG, TY_KEY = 60001, 60002
LIMITS = harness.LIMITS_LIFTED

pytestmark = pytest.mark.skipif(pg_util.missing() is not None,
                                reason=f"PostgreSQL server packages: {pg_util.missing()}")


@pytest.fixture(scope="module")
def pg():
    s = pg_util.PgServer().start()
    yield s
    s.stop()


def pg_store_conf(d, pg, db):
    """d's config with its [store] section pointing at database db of pg."""
    text = d.conf.read_text()
    text = re.sub(r"\[store\]\n(?:[^\[\n][^\n]*\n)*", "[store]\n" + pg.store_section(d.dir, db),
                  text, count=1)
    d.write_conf(text=text)


def instance(pki, pg, db, path, kek_from=None):
    d = harness.Mefd(path, pki, extra=LIMITS)
    if kek_from is not None:
        shutil.copy(kek_from.dir / "kek", d.dir / "kek")
    pg_store_conf(d, pg, db)
    return d


@pytest.fixture(scope="module")
def pair(mefctl, pki, pg, tmp_path_factory):
    """Instances A and B on one database with one KEK, and the standard enrolees."""
    db = pg.create_db("pair")
    a = instance(pki, pg, db, tmp_path_factory.mktemp("A"))
    b = instance(pki, pg, db, tmp_path_factory.mktemp("B"), kek_from=a)
    a.start()
    b.start()
    a.enrolees = b.enrolees = Enrolees(a, pki)
    a.pg_db = b.pg_db = db
    yield a, b
    for d in (a, b):
        if d.alive():
            d.stop(expect_rc=0)


def new_device(d, *targets):
    cid = "dev-" + u.rand_hex(4)
    ident = cid + "@devices.example.com"
    _, key_hex = new_psk()
    d.add_psk_client(cid, ident, key_hex)
    args = ["client", "set", cid, "--expiry", "1h"]
    for t in targets:
        args += ["--target", t]
    d.ctl(*args)
    return cid, ident, key_hex


def bootstrap(d, ident, key_hex, proto="dtls1_2", listener="coap", timeout=8):
    r = harness.s_client(d.ports[listener], proto, psk_identity=ident, psk=key_hex,
                         keymatexport=LABEL, timeout=timeout)
    return bytes.fromhex(r.keymat) if r.keymat else None


def fetch(d, keid, suid, maf_hex):
    """The target maf.example.com fetches its key for keid over HTTPS-PSK."""
    return harness.https_s_client(d.ports["https_psk"], "GET", f"/fetchCredentials/{keid}/{suid}",
                                  headers={"X-M2M-Origin": MAF}, psk_identity="maf@mef.example.com",
                                  psk=maf_hex)


def ke_rows(pg, db):
    return {row[0]: row[1] for row in pg.psql("SELECT keid, client_id FROM ke", db=db)}


# ------------------------------------------------------------------ the fleet

def test_schema_versioned_and_blobs_wrapped(pair, pg):
    a, _ = pair
    assert pg.psql("SELECT version FROM schema_version", db=a.pg_db) == [["4"]]
    e = a.enrolees
    rows = pg.psql("SELECT encode(psk_wrapped, 'hex') FROM clients WHERE id = 'psk1'", db=a.pg_db)
    assert rows and e.psk_hex.lower() not in rows[0][0]


def test_bootstrap_on_a_fetch_on_b(pair, pg):
    a, b = pair
    _, ident, key_hex = new_device(a, f"{MAF}:21")
    ekm = bootstrap(a, ident, key_hex)
    assert ekm, a.log()[-1500:]
    keid, ke = u.keid_of(ekm, harness.FQDN), u.ke_of(ekm)
    assert keid in ke_rows(pg, a.pg_db)
    e = b.enrolees
    r = fetch(b, keid, 21, e.maf_hex)
    assert r.status == 200 and r.rsc == 2000, r
    got = base64.b64decode(json.loads(r.body)["credential"])
    assert got == u.usage_constrained(ke, 21, MAF)
    # and mefctl on B's config lists it too (mefctl on the PostgreSQL backend)
    assert keid in u.keids(b)
    # no secret in clear anywhere in the database (pg_dump of every row)
    dump = subprocess.run([str(pg_util.PG_BIN / "pg_dump"), "--data-only", "-h", harness.HOST,
                           "-p", str(pg.port), "-U", pg_util.USER, a.pg_db], capture_output=True,
                          timeout=60, env=dict(os.environ, PGPASSWORD=pg.password)).stdout
    assert b"COPY public.ke" in dump
    for secret in (ke, bytes.fromhex(key_hex), bytes.fromhex(e.maf_hex), (a.dir / "kek").read_bytes()):
        for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
            assert form not in dump


def test_group_changed_through_a_seen_by_b(pair, pg):
    """Each instance keeps the groups in memory (docs/performance.md); the
    credential stamp in the shared database tells B at its next handshake
    that A's mefctl changed a group secret, disabled a member or a group."""
    a, b = pair
    dom = "grp-%s.example.com" % u.rand_hex(3)
    dev = "dev-1@" + dom
    s1, s2 = secrets.token_bytes(32), secrets.token_bytes(32)

    def ok_on_b(secret):
        return harness.s_client(b.ports["coap"], "dtls1_2", psk_identity=dev,
                                psk=u.group_kpm(secret, dev).hex(), keymatexport=LABEL).ok

    a.ctl("group", "add", "g-" + dom, "--pattern", "*@" + dom, "--secret-hex", s1.hex())
    assert ok_on_b(s1)
    a.ctl("group", "remove", "g-" + dom)
    a.ctl("group", "add", "g-" + dom, "--pattern", "*@" + dom, "--secret-hex", s2.hex())
    assert not ok_on_b(s1)
    assert ok_on_b(s2)
    a.ctl("client", "disable", dev)
    assert not ok_on_b(s2)
    a.ctl("client", "enable", dev)
    assert ok_on_b(s2)
    mark = u.log_mark(b)
    pg.psql(f"UPDATE groups SET disabled = 1 WHERE name = 'g-{dom}'", db=a.pg_db)
    assert not ok_on_b(s2)
    assert "enrolment group is disabled" in u.log_since(b, mark)


# --- Mmef over HTTPS (as test_mmef.py) ---

def et(seconds=3600):
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() + seconds))


def mmef(d, ident, key_hex, who, method, path, body=None, ty=None):
    headers = {"X-M2M-Origin": who, "X-M2M-RVI": "3"}
    raw = b""
    if body is not None:
        raw = json.dumps(body).encode()
        headers["Content-Type"] = "application/vnd.onem2m-res+json" + (f"; ty={ty}" if ty else "")
    r = harness.https_s_client(d.ports["https_psk"], method, path, headers=headers, body=raw,
                               psk_identity=ident, psk=key_hex)
    r.json = json.loads(r.body) if r.body else None
    return r


def psk1(d, method, path, body=None, ty=None):
    e = d.enrolees
    return mmef(d, e.psk_identity, e.psk_hex, "psk1", method, path, body, ty)


def maf(d, method, path):
    return mmef(d, "maf@mef.example.com", d.enrolees.maf_hex, MAF, method, path)


def test_key_registered_on_a_retrieved_on_b(pair):
    a, b = pair
    r = psk1(a, "POST", "/mef", {"sec:mefClientReg": {"et": et(), "adminFQDN": ADMIN}}, TY_REG)
    assert r.rsc in (2001, 4105), r.body
    key = secrets.token_bytes(32)
    r = psk1(a, "POST", "/mef", {"sec:mefKeyReg": {"et": et(), "adminFQDN": ADMIN, "SUID": 24,
                                                   "targetIDs": [MAF],
                                                   "keyValue": base64.b64encode(key).decode()}})
    assert r.rsc == 2001, r.body
    rel = r.json["sec:mefKeyReg"]["relativeKeyID"]
    got = maf(b, "GET", "/mef/" + rel)
    assert got.rsc == 2000, got.body
    assert base64.b64decode(got.json["sec:mefKeyReg"]["keyValue"]) == key


def run_parallel(jobs, threads=6):
    """Runs the callables in jobs on a few threads; returns their results in order."""
    out = [None] * len(jobs)
    nxt = iter(range(len(jobs)))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            out[i] = jobs[i]()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    return out


def test_concurrent_identifiers_unique(pair, pg):
    a, b = pair
    r = psk1(a, "POST", "/mef", {"sec:mefClientReg": {"et": et(), "adminFQDN": "cc.example.com"}},
             TY_REG)
    assert r.rsc == 2001, r.body
    ri = r.json["sec:mefClientReg"]["ri"]
    # cmdIDs: every GET of <mefClientCmd> with nothing queued hands out a fresh one
    got = run_parallel([lambda d=(a, b)[i % 2]: psk1(d, "GET", f"/mef/{ri}/cmd")
                        for i in range(16)])
    ids = [g.json["sec:mefClientCmd"]["cmdID"] for g in got if g.rsc == 2000]
    assert len(ids) == 16, [g.body for g in got]
    assert len(set(ids)) == 16, sorted(ids)
    # RelativeKeyIDs from both instances at once
    body = {"sec:mefKeyReg": {"et": et(), "adminFQDN": "cc.example.com", "SUID": 24,
                              "targetIDs": [MAF],
                              "keyValue": base64.b64encode(bytes(32)).decode()}}
    got = run_parallel([lambda d=(a, b)[i % 2]: psk1(d, "POST", "/mef", body) for i in range(12)])
    rels = [g.json["sec:mefKeyReg"]["relativeKeyID"] for g in got if g.rsc == 2001]
    assert len(rels) == 12 and len(set(rels)) == 12
    # the same registration raced on both: exactly one wins, the database says so
    cid, ident, key_hex = new_device(a)
    reg = {"sec:mefClientReg": {"et": et(), "adminFQDN": "race.example.com"}}
    got = run_parallel([lambda d=(a, b)[i % 2]: mmef(d, ident, key_hex, cid, "POST", "/mef", reg,
                                                     TY_REG) for i in range(8)])
    assert [g.rsc for g in got].count(2001) == 1, [g.rsc for g in got]
    assert pg.psql(f"SELECT count(*) FROM mmef_reg WHERE client_id = '{cid}'", db=a.pg_db) == [["1"]]


# --- certificates (EST) ---

def make_csr(tmp, name, san):
    key = tmp / f"{name}.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(key)], check=True, capture_output=True)
    csr = tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName={san}", "-outform", "DER", "-out", str(csr)],
                   check=True, capture_output=True)
    return csr.read_bytes(), key


def test_cert_revoked_through_a_refused_by_b(pair, pki, tmp_path):
    a, b = pair
    e = a.enrolees
    ident = "urn:x-onem2m-mef:client:psk1"
    der, key = make_csr(tmp_path, "psk1", f"URI:{ident}")
    r = harness.https_s_client(a.ports["https_psk"], method="POST",
                               path="/.well-known/est/simpleenroll",
                               headers={"Content-Type": "application/pkcs10"},
                               body=base64.encodebytes(der), psk_identity=e.psk_identity,
                               psk=e.psk_hex)
    if r.status == 404:
        pytest.skip("EST not served by this build")
    assert r.status == 200, (r, a.log()[-800:])
    pem = tmp_path / "psk1.pem"
    subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-print_certs", "-out", str(pem)],
                   input=base64.b64decode(r.body), check=True, capture_output=True)
    sn = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-serial"], check=True,
                        capture_output=True, text=True).stdout.strip().split("=")[1]
    sn = sn.upper().lstrip("0")
    listed = json.loads(b.ctl("cert", "list", "--json").stdout)
    assert any(sn in json.dumps(c).upper() for c in listed)
    ok = harness.curl(b.ports["https_cert"], "/crl.der", cert=pem, key=key, cafile=pki.ca.crt)
    assert ok.status == 200, ok
    a.ctl("cert", "revoke", sn)
    mark = len(b.log())
    r = harness.curl(b.ports["https_cert"], "/crl.der", cert=pem, key=key, cafile=pki.ca.crt)
    assert r.status == 0
    assert b.wait_log(r"handshake refused: certificate revoked", start=mark)


# --- an instance dies during a storm ---

def bootstrap_answered(d, ident, key_hex):
    """A bootstrap over HTTPS-PSK that also sends a request: the EKM if an
    HTTP answer came back on that session, else None. mefd stores the Ke when
    the handshake completes, before the session carries any request, so an
    answer proves the Ke was committed; a handshake that completed at the
    instant of the kill without an answer may hold an unstored Ke
    (docs/scale-out.md: the client must bootstrap again)."""
    r = harness.https_s_client(d.ports["https_psk"], "GET", "/mef", psk_identity=ident,
                               psk=key_hex, keymatexport=LABEL, timeout=6)
    if not r.status or not r.tls.keymat:
        return None
    return bytes.fromhex(r.tls.keymat)


def test_sigkill_a_during_storm(pair, pg):
    a, b = pair
    devs = [new_device(a) for _ in range(6)]
    plan = [(("A", "B")[i % 2], devs[i % len(devs)]) for i in range(36)]
    results = [None] * len(plan)
    killed = threading.Event()

    def job(i):
        def run():
            which, (_, ident, key_hex) = plan[i]
            d = a if which == "A" else b
            if which == "A" and killed.is_set():
                return
            results[i] = (which, bootstrap_answered(d, ident, key_hex))
        return run

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(1 for x in results if x) < 8:
            time.sleep(0.05)
        a.signal(signal.SIGKILL)
        killed.set()
    kt = threading.Thread(target=killer)
    kt.start()
    run_parallel([job(i) for i in range(len(plan))], threads=4)
    kt.join(timeout=70)
    a.proc.wait(timeout=10)
    assert killed.is_set()
    stored = ke_rows(pg, a.pg_db)
    answered = [(w, ekm) for w, ekm in (x for x in results if x) if ekm]
    for w, ekm in answered:
        assert u.keid_of(ekm, harness.FQDN) in stored, f"Ke answered by {w} is missing"
    b_runs = [x for x in results if x and x[0] == "B"]
    print(f"storm: {len(answered)} answered ({sum(1 for w, _ in answered if w == 'A')} by A), "
          f"{len(stored)} Ke stored, B {len(b_runs)} runs")
    assert b_runs and all(ekm for _, ekm in b_runs), "B stopped serving"
    assert b.alive()
    # A comes back on the same database and serves again
    a.proc = None
    a.start()
    _, ident, key_hex = devs[0]
    assert bootstrap(a, ident, key_hex)


# ------------------------------------------------------------------ migration

def test_migrate_sqlite_to_postgresql(mefctl, pki, pg, tmp_path):
    src = harness.Mefd(tmp_path / "single", pki, extra=LIMITS)
    # SQLite even when the suite runs with MEFD_STORE=postgresql
    src.write_conf(text=re.sub(r"\[store\]\n(?:[^\[\n][^\n]*\n)*",
                               f"[store]\npath = {src.db}\nkek_file = {src.dir}/kek\n",
                               src.conf.read_text(), count=1))
    src.start()
    try:
        e = Enrolees(src, pki)
        _, ident, key_hex = new_device(src, f"{MAF}:21")
        ekm = bootstrap(src, ident, key_hex)
        assert ekm
        src.ctl("group", "add", "g1", "--pattern", "*@f7.example.com", "--secret-hex", "11" * 32)
        db = pg.create_db("migrated")
        env = dict(os.environ, PGPASSWORD=pg.password)
        cp = harness.run([harness.MEFCTL, "-c", src.conf, "migrate", "--from", f"sqlite:{src.db}",
                          "--to", pg.url(db)], timeout=60, env=env)
        assert cp.returncode == 0, cp.stderr
        rows = {ln.split()[0]: ln.split()[1:] for ln in cp.stdout.splitlines()[1:]}
        assert rows["clients"][:2] == ["6", "6"] and rows["ke"][:2] == ["1", "1"], cp.stdout
        assert all(v[2] == "ok" for v in rows.values()), cp.stdout
        # a second run refuses: the target is no longer empty
        cp = harness.run([harness.MEFCTL, "-c", src.conf, "migrate", "--from", f"sqlite:{src.db}",
                          "--to", pg.url(db)], timeout=60, env=env)
        assert cp.returncode == 2 and "not empty" in cp.stderr
    finally:
        src.stop(expect_rc=0)
    # a PostgreSQL instance with the same KEK serves the migrated Ke
    d = instance(pki, pg, db, tmp_path / "after", kek_from=src)
    d.start()
    try:
        r = fetch(d, u.keid_of(ekm, harness.FQDN), 21, e.maf_hex)
        assert r.status == 200, r
        assert base64.b64decode(json.loads(r.body)["credential"]) == \
            u.usage_constrained(u.ke_of(ekm), 21, MAF)
    finally:
        d.stop(expect_rc=0)


def test_check_config_read_only(pair, pg):
    """--check-config opens the database read-only at this build's schema version."""
    a, _ = pair
    cp = harness.run([harness.MEFD, "-c", a.conf, "--check-config"], timeout=30)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    bad = a.dir / "bad.conf"
    bad.write_text(a.conf.read_text().replace(f"url = {pg.url(a.pg_db)}",
                                              f"url = postgresql://mefd:pw@127.0.0.1:{pg.port}/x"))
    cp = harness.run([harness.MEFD, "-c", bad, "--check-config"], timeout=30)
    assert cp.returncode != 0 and "password_file" in cp.stdout + cp.stderr


def test_database_restart(pair, pg):
    """The database restarts under both instances: their connections are cut,
    the next statement re-opens them and both serve again."""
    a, b = pair
    if not a.alive():
        a.proc = None
        a.start()
    _, ident, key_hex = new_device(a)
    pg.restart()
    for d in (a, b):
        ok = None
        for _ in range(6):  # the first handshake after the cut may meet the dead connection
            ok = bootstrap_answered(d, ident, key_hex)
            if ok:
                break
            time.sleep(0.5)
        assert ok, d.log()[-1500:]
        assert u.keid_of(ok, harness.FQDN) in ke_rows(pg, d.pg_db)
        assert d.alive()
