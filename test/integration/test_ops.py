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
