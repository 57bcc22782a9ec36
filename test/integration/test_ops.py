# SPDX-License-Identifier: BSD-2-Clause
"""Operations (issue 6): systemd notification stood in by a datagram socket of
our own, LoadCredential= paths, make install, Prometheus metrics deltas, the
hash-chained audit trail (checked with Python's hashlib), rate limits, and the
fleet verbs of mefctl (import, export, backup, stats)."""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import harness
from conftest import new_psk

REPO = harness.REPO


# ---------------------------------------------------------------- systemd notify

class NotifySocket:
    """The systemd side of sd_notify: a datagram socket in a temp folder."""

    def __init__(self, d):
        self.path = str(Path(d) / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.msgs = []

    def wait_for(self, word, timeout=5.0):
        """Reads datagrams until one holds the line word; returns it or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.msgs:
                if word in m.split("\n"):
                    self.msgs.remove(m)
                    return m
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return None

    def close(self):
        self.sock.close()


def start_env(d, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHDOG_", "NOTIFY_"))}
    env.update(env_extra)
    logf = open(d.logpath, "ab")
    p = subprocess.Popen([str(harness.MEFD), "-c", str(d.conf)], stdin=subprocess.DEVNULL,
                         stdout=logf, stderr=logf, cwd=d.dir, env=env)
    logf.close()
    return p


def test_sd_notify_ready_reload_watchdog_stopping(mefctl, pki, tmp_path):
    d = harness.Mefd(tmp_path / "m", pki)
    ns = NotifySocket(tmp_path)
    # no --foreground: with NOTIFY_SOCKET mefd must not detach (systemd tracks the PID)
    # WATCHDOG_PID is left unset: sd_watchdog_enabled() then trusts WATCHDOG_USEC
    p = start_env(d, {"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"})
    try:
        assert ns.wait_for("READY=1"), d.log()
        assert p.poll() is None, "mefd detached or died under systemd"
        pings = 0
        deadline = time.monotonic() + 5
        while pings < 3 and time.monotonic() < deadline:
            if ns.wait_for("WATCHDOG=1", timeout=1.0):
                pings += 1
        assert pings >= 3, "fewer than 3 WATCHDOG=1 pings"
        p.send_signal(signal.SIGHUP)
        assert ns.wait_for("RELOADING=1"), d.log()
        assert ns.wait_for("READY=1"), d.log()
        p.send_signal(signal.SIGTERM)
        assert ns.wait_for("STOPPING=1"), d.log()
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        ns.close()


def test_credentials_directory_paths(mefctl, pki, tmp_path):
    """kek_file = %d/kek resolves against $CREDENTIALS_DIRECTORY (LoadCredential=)."""
    d = harness.Mefd(tmp_path / "m", pki)
    cred = tmp_path / "creds"
    cred.mkdir(mode=0o500)
    os.rename(d.dir / "kek", cred / "kek")
    text = d.conf.read_text().replace(f"kek_file = {d.dir}/kek", "kek_file = %d/kek")
    text = text.replace(f"private_key = {pki.ca.key}", "private_key = ${CREDENTIALS_DIRECTORY}/ca.key")
    (cred / "ca.key").write_bytes(pki.ca.key.read_bytes())
    os.chmod(cred / "ca.key", 0o400)
    d.write_conf(text=text)
    env = dict(os.environ, CREDENTIALS_DIRECTORY=str(cred))
    cp = subprocess.run([str(harness.MEFD), "-c", str(d.conf), "--check-config"], env=env,
                        capture_output=True, text=True, timeout=10)
    assert cp.returncode == 0, cp.stderr
    env.pop("CREDENTIALS_DIRECTORY")
    cp = subprocess.run([str(harness.MEFD), "-c", str(d.conf), "--check-config"], env=env,
                        capture_output=True, text=True, timeout=10)
    assert cp.returncode == 1
    assert re.search(r"mefd\.conf:\d+: \[store\] kek_file: %d/kek needs \$CREDENTIALS_DIRECTORY",
                     cp.stderr), cp.stderr


def test_make_install_destdir(tmp_path):
    dest = tmp_path / "root"
    # -o all: install what is built; other work in progress must not break this test
    cp = subprocess.run(["make", "-s", "-o", "all", "-C", str(REPO), f"BUILD={harness.BUILD}", "install",
                         f"DESTDIR={dest}", "PREFIX=/usr"], capture_output=True, text=True,
                        timeout=120)
    assert cp.returncode == 0, cp.stderr
    for f in ("usr/sbin/mefd", "usr/bin/mefctl", "etc/mefd/mefd.conf.example",
              "usr/lib/systemd/system/mefd.service", "usr/lib/sysusers.d/mefd.conf",
              "usr/lib/tmpfiles.d/mefd.conf", "usr/share/man/man8/mefd.8",
              "usr/share/man/man8/mefctl.8", "usr/share/man/man5/mefd.conf.5"):
        assert (dest / f).is_file(), f
    unit = (dest / "usr/lib/systemd/system/mefd.service").read_text()
    assert "ExecStart=/usr/sbin/mefd -c /etc/mefd/mefd.conf" in unit
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "LoadCredential=kek:" in unit
    # the man pages are valid roff (man prints warnings on stderr for bad requests)
    for page in ("usr/share/man/man8/mefd.8", "usr/share/man/man5/mefd.conf.5"):
        cp = subprocess.run(["man", "--warnings", "-l", str(dest / page)], capture_output=True,
                            text=True, timeout=30, env=dict(os.environ, MANWIDTH="80"))
        assert cp.returncode == 0 and not cp.stderr.strip(), cp.stderr


# ---------------------------------------------------------------- metrics

def scrape(port):
    """GET /metrics with curl; {series text: value}."""
    cp = harness.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{port}/metrics"],
                     check=True)
    out = {}
    for ln in cp.stdout.splitlines():
        if ln and not ln.startswith("#"):
            name, _, val = ln.rpartition(" ")
            out[name] = float(val)
    return out, cp.stdout


def delta(a, b, key):
    return b.get(key, 0) - a.get(key, 0)


def psk_get(d, ident, psk_hex, path="/mef", port=None):
    return harness.https_s_client(port or d.ports["https_psk"], path=path, psk_identity=ident,
                                  psk=psk_hex)


def ops_daemon(mefd_factory, extra="", level="info"):
    mport = harness.free_port()
    d = mefd_factory(level=level, start=False,
                     extra=f"[metrics]\nlisten = 127.0.0.1:{mport}\n{extra}")
    d.mport = mport
    _, d.psk_hex = new_psk()
    _, d.maf_hex = new_psk()
    d.add_psk_client("dev1", "dev1@ops.example.com", d.psk_hex)
    d.add_psk_client("maf.example.com", "maf@ops.example.com", d.maf_hex)
    d.set_targets("dev1", "maf.example.com:21")
    d.start()
    return d


def test_metrics_deltas(mefd_factory):
    d = ops_daemon(mefd_factory)
    before, text = scrape(d.mport)
    assert 'mefd_build_info{version="' in text
    assert "# TYPE mefd_handshakes_total counter" in text
    # two good bootstraps, one unknown identity, one wrong key
    for _ in range(2):
        assert psk_get(d, "dev1@ops.example.com", d.psk_hex).status == 200
    assert psk_get(d, "nobody@ops.example.com", d.psk_hex).status == 0
    keid = json.loads(d.ctl("ke", "list", "--client", "dev1", "--json").stdout)[0]["keID"]
    r = psk_get(d, "maf@ops.example.com", d.maf_hex, f"/fetchCredentials/{keid}/21")
    assert r.status == 200, r
    r = psk_get(d, "maf@ops.example.com", d.maf_hex, f"/fetchCredentials/{keid}/22")
    assert r.status == 403, r
    after, text = scrape(d.mport)
    ok = 'mefd_handshakes_total{transport="https-psk",outcome="ok",reason="none"}'
    unknown = ('mefd_handshakes_total{transport="https-psk",outcome="refused",'
               'reason="unknown PSK identity"}')
    assert delta(before, after, ok) == 4            # 2 bootstraps + 2 fetch sessions
    assert delta(before, after, unknown) == 1
    assert delta(before, after, "mefd_enrolment_keys_generated_total") == 4
    assert delta(before, after, 'mefd_fetch_total{outcome="ok"}') == 1
    assert delta(before, after, 'mefd_fetch_total{outcome="refused"}') == 1
    assert delta(before, after, 'mefd_store_seconds_count{op="ke_put"}') == 4
    assert delta(before, after, 'mefd_store_seconds_count{op="ke_get"}') == 2
    assert after['mefd_store_seconds_bucket{op="ke_put",le="+Inf"}'] == \
        after['mefd_store_seconds_count{op="ke_put"}']
    assert 'mefd_sessions_active{listener="https-psk"}' in after
    # the group commit: the 4 Ke rows, in 1 to 4 batches, each with its latency
    assert "# TYPE mefd_group_commit_seconds histogram" in text
    assert delta(before, after, "mefd_group_commit_rows_total") == 4
    assert 1 <= delta(before, after, "mefd_group_commit_seconds_count") <= 4
    assert after['mefd_group_commit_seconds_bucket{le="+Inf"}'] == \
        after["mefd_group_commit_seconds_count"]
    assert after["mefd_group_commit_seconds_sum"] > before.get("mefd_group_commit_seconds_sum", 0)
    # its four phases, one after the other, make up each commit's latency
    phases = [f'mefd_group_commit_phase_seconds_total{{phase="{p}"}}'
              for p in ("handoff", "write", "commit", "notify")]
    assert all(delta(before, after, p) >= 0 for p in phases)
    assert delta(before, after, phases[2]) > 0      # a COMMIT takes time (an fsync)
    assert abs(sum(delta(before, after, p) for p in phases) -
               delta(before, after, "mefd_group_commit_seconds_sum")) < 1e-5
    # only GET /metrics; nothing else is served there
    cp = harness.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                      f"http://127.0.0.1:{d.mport}/"])
    assert cp.stdout == "404"


# ---------------------------------------------------------------- audit trail

def chain_ok(path):
    """Independent check of the format in include/mef/audit.h with hashlib."""
    prev = "0" * 64
    lines = Path(path).read_bytes().split(b"\n")
    assert lines[-1] == b""
    for ln in lines[:-1]:
        obj = json.loads(ln)
        body, tail = ln.rsplit(b',"hash":"', 1)
        assert tail == obj["hash"].encode() + b'"}'
        assert hashlib.sha256(body).hexdigest() == obj["hash"]
        assert obj["prev"] == prev
        prev = hashlib.sha256(ln).hexdigest()
    return [json.loads(ln) for ln in lines[:-1]]


def test_audit_lines_synced_by_the_group_commit(mefd_factory, tmp_path):
    """docs/operations.md: mefd does not fdatasync each audit line on its loop;
    the writer thread syncs the trail with the group commit that carries the
    Ke, before the answer held for it. strace (attached to every thread) must
    see the trail's fdatasync from the writer thread only, and the chain
    stays intact."""
    audit = tmp_path / "audit.log"
    d = ops_daemon(mefd_factory, extra=f"[audit]\npath = {audit}\n")
    trace = tmp_path / "strace.txt"
    st = subprocess.Popen(["strace", "-f", "-y", "-qq", "-e", "trace=fdatasync", "-o", str(trace),
                           "-p", str(d.pid)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # attached to every thread
        for _ in range(6):
            assert psk_get(d, "dev1@ops.example.com", d.psk_hex).status == 200
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(10)
    synced = [ln.split()[0] for ln in trace.read_text().splitlines()
              if "fdatasync(" in ln and str(audit) in ln]
    assert synced, trace.read_text()[-2000:]
    assert str(d.pid) not in synced, "the loop thread synced the audit trail itself"
    events = chain_ok(audit)
    assert sum(e["event"] == "bootstrap" for e in events) >= 6


def test_audit_trail_chain_and_tamper(mefd_factory, tmp_path):
    audit = tmp_path / "audit.log"
    d = ops_daemon(mefd_factory, extra=f"[audit]\npath = {audit}\n")
    assert psk_get(d, "dev1@ops.example.com", d.psk_hex).status == 200
    assert psk_get(d, "nobody@ops.example.com", d.psk_hex).status == 0
    keid = json.loads(d.ctl("ke", "list", "--client", "dev1", "--json").stdout)[0]["keID"]
    assert psk_get(d, "maf@ops.example.com", d.maf_hex,
                   f"/fetchCredentials/{keid}/21").status == 200
    d.ctl("client", "disable", "dev1")
    d.ctl("ke", "revoke", keid)
    d.ctl("client", "list")                       # read-only: not recorded
    events = chain_ok(audit)
    kinds = [e["event"] for e in events]
    admin = [e for e in events if e["event"] == "admin"]
    assert [e["verb"] for e in admin] == ["client add ID", "client add ID", "client set ID",
                                          "client disable ID", "ke revoke KEID"]
    assert admin[0]["psk_identity"] == "dev1@ops.example.com" and admin[0]["result"] == "ok"
    assert "bootstrap" in kinds and "fetch" in kinds
    refused = [e for e in events if e["event"] == "handshake_refused"]
    assert any(e.get("reason") == "unknown PSK identity" and
               e.get("identity") == "nobody@ops.example.com" for e in refused)
    boot = [e for e in events if e["event"] == "bootstrap"][0]
    assert boot["client"] == "dev1" and boot["keid"] == keid
    # no secret: neither PSK (hex or raw) nor any Ke
    raw = audit.read_text()
    kes = json.loads(d.ctl("ke", "list", "--json", "--show-secrets").stdout)
    for s in [d.psk_hex, d.maf_hex, bytes.fromhex(d.psk_hex).decode()] + \
            [v for k in kes for kk, v in k.items() if kk.lower() in ("ke", "key", "secret")]:
        assert s.lower() not in raw.lower()
    cp = d.ctl("audit", "verify", check=False)
    assert cp.returncode == 0 and "chain intact" in cp.stdout, cp.stderr
    # edit one field of line 3: that line is named
    lines = audit.read_text().splitlines(keepends=True)
    tampered = tmp_path / "tampered.log"
    lines3 = list(lines)
    lines3[2] = lines3[2].replace('"result":"ok"', '"result":"failed"', 1) \
        if '"result":"ok"' in lines3[2] else lines3[2].replace('"ts":"2', '"ts":"1', 1)
    assert lines3[2] != lines[2]
    tampered.write_text("".join(lines3))
    cp = d.ctl("audit", "verify", str(tampered), check=False)
    assert cp.returncode == 2
    assert f"{tampered}:3: audit chain broken" in cp.stderr, cp.stderr
    # remove line 4: line 4 (formerly 5) no longer chains
    tampered.write_text("".join(lines[:3] + lines[4:]))
    cp = d.ctl("audit", "verify", str(tampered), check=False)
    assert cp.returncode == 2 and f"{tampered}:4: audit chain broken: prev" in cp.stderr


# ---------------------------------------------------------------- rate limits

OPT_MAX_AGE = 14


def test_request_rate_limit_429_and_429_coap(mefd_factory):
    # 1 request a minute per identity, burst 2; addresses (all 127.0.0.1) get 100x
    d = ops_daemon(mefd_factory, extra="[limits]\nrequest_rate = 1\nrequest_burst = 2\n"
                                       "addr_factor = 100\n")
    for _ in range(2):
        assert psk_get(d, "dev1@ops.example.com", d.psk_hex).status == 200
    r = psk_get(d, "dev1@ops.example.com", d.psk_hex)
    assert r.status == 429 and r.rsc == 4290, r
    assert 55 <= int(r.headers["retry-after"]) <= 60, r.headers
    # CoAP over DTLS, same identity: 4.29 with Max-Age (RFC 8516)
    c = harness.coap_s_client(d.ports["coap"], "/mef", proto="dtls1_2",
                              psk_identity="dev1@ops.example.com", psk=d.psk_hex)
    assert c is not None and c.code == "4.29", c
    assert 55 <= int.from_bytes(c.opt(OPT_MAX_AGE), "big") <= 60
    # another client on the same address is served
    assert psk_get(d, "maf@ops.example.com", d.maf_hex).status == 200
    m, _ = scrape(d.mport)
    assert m['mefd_rate_limited_total{kind="request",scope="identity"}'] == 2


def test_handshake_rate_limit(mefd_factory):
    d = ops_daemon(mefd_factory, extra="[limits]\nhandshake_rate = 1\nhandshake_burst = 2\n"
                                       "addr_factor = 100\n")
    for _ in range(2):
        assert psk_get(d, "dev1@ops.example.com", d.psk_hex).status == 200
    before = len(json.loads(d.ctl("ke", "list", "--json").stdout))
    r = psk_get(d, "dev1@ops.example.com", d.psk_hex)
    assert r.status == 0 and not r.tls.ok
    assert len(json.loads(d.ctl("ke", "list", "--json").stdout)) == before  # no Ke
    assert psk_get(d, "maf@ops.example.com", d.maf_hex).status == 200
    assert d.wait_log(r"handshake refused: rate limited \(identity\)")
    m, _ = scrape(d.mport)
    assert m['mefd_rate_limited_total{kind="handshake",scope="identity"}'] >= 1


# ---------------------------------------------------------------- fleet verbs

CSV_HEAD = "id,psk_identity,psk_hex,admin_fqdn,enrolee_id,targets,expiry\n"


def fleet_csv(path, n, start=0):
    keys = {}
    with open(path, "w") as f:
        f.write(CSV_HEAD)
        for i in range(start, start + n):
            k = os.urandom(16).hex()
            keys[f"fd{i:06d}"] = k
            f.write(f"fd{i:06d},fd{i:06d}@fleet.example.com,{k},adm.example.com,C{i:06d},"
                    f"maf.example.com:21 mas.example.com:22,30d\n")
    return keys


def n_clients(d):
    return json.loads(d.ctl("stats", "--json").stdout)["clients"]["total"]


def test_import_100k_one_transaction(mefd_factory, tmp_path):
    d = ops_daemon(mefd_factory, extra=f"[audit]\npath = {tmp_path}/audit.log\n")
    keys = fleet_csv(tmp_path / "fleet.csv", 100000)
    t0 = time.monotonic()
    cp = d.ctl("client", "import", str(tmp_path / "fleet.csv"), timeout=120)
    took = time.monotonic() - t0
    print(f"\nimported 100,000 enrolees in {took:.2f} s")
    assert cp.stdout.strip() == "imported 100000 client(s)"
    assert n_clients(d) == 100002
    show = json.loads(d.ctl("client", "show", "fd054321", "--json").stdout)
    assert show["enroleeID"] == "C054321" if "enroleeID" in show else True
    # an imported device bootstraps with its PSK while mefd runs
    assert psk_get(d, "fd099999@fleet.example.com", keys["fd099999"]).status == 200
    admin = [e for e in chain_ok(tmp_path / "audit.log") if e["event"] == "admin"]
    assert admin[-1]["verb"] == "client import FILE" and admin[-1]["result"] == "ok"


def test_import_all_or_nothing_with_line_numbers(mefd_factory, tmp_path):
    d = ops_daemon(mefd_factory)
    fleet_csv(tmp_path / "f.csv", 10)
    lines = (tmp_path / "f.csv").read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",adm.example.com", "zz,adm.example.com", 1)  # odd hex: line 4
    lines[6] = lines[2]                                                          # duplicate: line 7
    lines[8] = "fd9,x@y,00,a,b,c\n"                                            # 6 fields: line 9
    (tmp_path / "f.csv").write_text("".join(lines))
    before = n_clients(d)
    cp = d.ctl("client", "import", str(tmp_path / "f.csv"), check=False)
    assert cp.returncode == 2
    assert f"{tmp_path}/f.csv:4: psk_hex" in cp.stderr, cp.stderr
    assert f"{tmp_path}/f.csv:7: client fd000001: id or psk_identity already exists" in cp.stderr
    assert f"{tmp_path}/f.csv:9: want 7 comma-separated fields" in cp.stderr
    assert "nothing imported" in cp.stderr
    assert n_clients(d) == before
    # bad header
    (tmp_path / "h.csv").write_text("id,psk\nx,y\n")
    cp = d.ctl("client", "import", str(tmp_path / "h.csv"), check=False)
    assert cp.returncode == 2 and ":1: header must be" in cp.stderr


def test_import_json_export_roundtrip(mefd_factory, tmp_path):
    d = ops_daemon(mefd_factory)
    rows = [{"id": "j1", "psk_identity": "j1@fleet.example.com", "psk_hex": "11" * 16,
             "targets": "maf.example.com:21", "expiry": 3600},
            {"id": "j2", "psk_identity": "j2@fleet.example.com", "psk_hex": "22" * 32,
             "enrolee_id": "Cj2", "admin_fqdn": "adm.example.com"}]
    (tmp_path / "f.json").write_text(json.dumps(rows))
    assert d.ctl("client", "import", str(tmp_path / "f.json")).stdout.startswith("imported 2")
    bad = [dict(rows[0], id="j3", psk_identity="j3@x"), {"id": "j4", "psk_hex": 5}]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    cp = d.ctl("client", "import", str(tmp_path / "bad.json"), check=False)
    assert cp.returncode == 2 and f"{tmp_path}/bad.json:2: element 2" in cp.stderr
    # export without secrets has no PSK; with them it re-imports into a fresh store
    plain = d.ctl("client", "export").stdout
    assert "11" * 16 not in plain and plain.startswith(CSV_HEAD)
    full = d.ctl("client", "export", "--show-secrets").stdout
    rec = {r["id"]: r for r in csv.DictReader(io.StringIO(full))}
    assert rec["j1"]["psk_hex"] == "11" * 16 and rec["j1"]["targets"] == "maf.example.com:21"
    assert rec["j1"]["expiry"] == "3600" and rec["j2"]["enrolee_id"] == "Cj2"
    js = json.loads(d.ctl("client", "export", "--json").stdout)
    assert {r["id"] for r in js} >= {"j1", "j2", "dev1"} and "psk_hex" not in js[0]
    d2 = ops_daemon(mefd_factory)
    d2.ctl("client", "remove", "dev1")
    d2.ctl("client", "remove", "maf.example.com")
    (tmp_path / "again.csv").write_text(full)
    assert d2.ctl("client", "import", str(tmp_path / "again.csv")).returncode == 0
    assert d2.ctl("client", "export", "--show-secrets").stdout == full
    st = json.loads(d.ctl("stats", "--json").stdout)
    assert st["clients"]["total"] == 4 and st["clients"]["psk"] == 4


@pytest.mark.skipif(os.environ.get("MEFD_STORE") == "postgresql",
                    reason="mefctl backup is SQLite's online backup; a PostgreSQL store is "
                    "backed up with pg_dump (docs/scale-out.md)")
def test_backup_under_load(mefd_factory, tmp_path):
    d = ops_daemon(mefd_factory)
    fleet_csv(tmp_path / "f.csv", 20000)
    d.ctl("client", "import", str(tmp_path / "f.csv"), timeout=60)
    stop = threading.Event()
    done = {"hs": 0, "add": 0}

    def load():
        i = 0
        while not stop.is_set() and i < 200:
            if psk_get(d, "dev1@ops.example.com", d.psk_hex).status == 200:
                done["hs"] += 1
            d.ctl("client", "add", f"load{i}", "--psk-identity", f"load{i}@x",
                  "--psk-hex", "ab" * 16)
            done["add"] += 1
            i += 1
    th = threading.Thread(target=load)
    th.start()
    try:
        time.sleep(0.5)
        backups = []
        for k in range(3):
            b = tmp_path / f"backup{k}.db"
            cp = d.ctl("backup", str(b), check=False, timeout=60)
            assert cp.returncode == 0, cp.stderr
            backups.append(b)
            time.sleep(0.2)
    finally:
        stop.set()
        th.join(timeout=60)
    assert done["hs"] > 0 and done["add"] > 0
    for b in backups:
        assert oct(b.stat().st_mode & 0o777) == "0o600"
        con = sqlite3.connect(f"file:{b}?mode=ro", uri=True)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = con.execute("SELECT count(*) FROM clients").fetchone()[0]
        assert 20002 <= n <= 20002 + done["add"]
        con.close()
    cp = d.ctl("backup", str(backups[0]), check=False)
    assert cp.returncode == 2 and "exists" in cp.stderr


# ---------------------------------------------------------------- session caps

def wait_active(d, listener, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m, _ = scrape(d.mport)
        if m.get(f'mefd_sessions_active{{listener="{listener}"}}') == n:
            return True
        time.sleep(0.05)
    return False


def test_half_open_cap_https(mefd_factory):
    """[limits] max_handshakes: TCP connections that never finish TLS hold the
    half-open slots; a real client is refused until they go away."""
    d = ops_daemon(mefd_factory, extra="[limits]\nmax_handshakes = 2\nhandshake_timeout = 30\n")
    port = d.ports["https_psk"]
    assert wait_active(d, "https-psk", 0)     # the harness's port probe is gone
    held = [socket.create_connection((harness.HOST, port), timeout=2) for _ in range(2)]
    try:
        assert wait_active(d, "https-psk", 2)
        assert psk_get(d, "dev1@ops.example.com", d.psk_hex).status == 0
        # refused at accept, not queued: the count stays at the cap
        assert wait_active(d, "https-psk", 2)
    finally:
        for s in held:
            s.close()
    assert wait_active(d, "https-psk", 0)
    assert psk_get(d, "dev1@ops.example.com", d.psk_hex).status == 200


def exposure(unit):
    cp = harness.run(["systemd-analyze", "security", "--offline=true", str(unit)], timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", cp.stdout + cp.stderr)
    assert m, cp.stdout + cp.stderr
    return float(m.group(1))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_unit_exposure(tmp_path):
    unit = REPO / "systemd/mefd.service"
    assert exposure(unit) <= 1.5
    # the low-ports drop-in folded into the unit (offline mode reads one file)
    text = unit.read_text()
    for line in (REPO / "systemd/low-ports.conf").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key = line.split("=", 1)[0]
            text = re.sub(rf"^{key}=.*$", line, text, flags=re.M)
    (tmp_path / "mefd.service").write_text(text)
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in text
    assert exposure(tmp_path / "mefd.service") <= 1.5


def test_half_open_gauge(mefd_factory):
    """mefd_sessions_half_open counts handshakes that have not completed:
    a stalled ClientHello on the HTTPS PSK port shows up, and goes away."""
    import socket
    d = ops_daemon(mefd_factory)
    key = 'mefd_sessions_half_open{listener="https-psk"}'
    before, _ = scrape(d.mport)
    assert before.get(key) == 0, before
    s = socket.create_connection((harness.HOST, d.ports["https_psk"]), timeout=3)
    s.sendall(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03")   # a ClientHello, cut short

    def gauge_becomes(want):
        deadline = time.monotonic() + 5
        while True:
            got, _ = scrape(d.mport)
            if got.get(key) == want or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    try:
        during = gauge_becomes(1)
        assert during.get(key) == 1, during
    finally:
        s.close()
    after = gauge_becomes(0)
    assert after.get(key) == 0, after
