# SPDX-License-Identifier: BSD-2-Clause
"""Daemon behaviour: no CPU spin on a stalled handshake (the MHD 0.9.75 epoll
timeout bug, stack-notes.md), SIGHUP reload with good and broken configs,
SIGTERM exit status, and no PSK or Ke in clear in the database or the log."""

import os
import shutil
import signal
import socket
import subprocess
import time


from conftest import new_psk
from harness import BOOTSTRAP_LABEL, HOST, coap_s_client, https_s_client, s_client

CLK_TCK = os.sysconf("SC_CLK_TCK")


def capture_client_hello(timeout=5):
    """The first flight of a real openssl s_client (TLS 1.2/1.3 ClientHello),
    caught on a throw-away loopback listener."""
    srv = socket.socket()
    srv.bind((HOST, 0))
    srv.listen(1)
    srv.settimeout(timeout)
    port = srv.getsockname()[1]
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"{HOST}:{port}"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        conn, _ = srv.accept()
        conn.settimeout(timeout)
        data = b""
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        conn.close()
        return data
    finally:
        p.kill()
        p.wait(timeout=5)
        srv.close()


def psk_bootstrap(d, identity, key_hex):
    """One HTTPS and one DTLS PSK bootstrap; returns the exported key material."""
    mats = []
    t = s_client(d.ports["https_psk"], "tls1_2", cipher="PSK-AES128-CBC-SHA256",
                 psk_identity=identity, psk=key_hex, keymatexport=BOOTSTRAP_LABEL)
    mats.append(t.keymat)
    t = s_client(d.ports["coap"], "dtls1_2", cipher="PSK-AES128-CCM8",
                 psk_identity=identity, psk=key_hex, keymatexport=BOOTSTRAP_LABEL)
    mats.append(t.keymat)
    return [m for m in mats if m]


def serves(d, cert):
    """GET /mef answered over HTTPS and over CoAP/DTLS with client certificate cert."""
    kw = {"cert": cert.crt, "key": cert.key, "cafile": d.pki.ca.crt}
    r = https_s_client(d.ports["https_cert"], proto="tls1_2", **kw)
    c = coap_s_client(d.ports["coap"], proto="dtls1_2", **kw)
    return r.status == 200 and c is not None and c.code == "2.05"


def test_stalled_client_hello_does_not_spin(mefd):
    hello = capture_client_hello()
    assert hello[:1] == b"\x16" and len(hello) > 40
    socks = []
    try:
        for port in (mefd.ports["https_psk"], mefd.ports["https_cert"], mefd.ports["coap"]):
            for data in (hello[:40], hello):   # a torn and a whole ClientHello, then silence
                s = socket.create_connection((HOST, port), timeout=2)
                s.sendall(data)
                socks.append(s)
        time.sleep(0.3)
        t0, c0 = time.monotonic(), mefd.cpu_ticks()
        time.sleep(3.0)
        t1, c1 = time.monotonic(), mefd.cpu_ticks()
    finally:
        for s in socks:
            s.close()
    share = (c1 - c0) / CLK_TCK / (t1 - t0)
    print(f"\nstalled ClientHellos: mefd used {share:.1%} of a core")
    assert share < 0.10, f"mefd used {share:.0%} of a core with stalled handshakes"
    assert mefd.alive()


def test_sigterm_exits_zero(mefd_factory):
    d = mefd_factory()
    t0 = time.monotonic()
    assert d.stop(expect_rc=None) == 0, d.log()
    assert time.monotonic() - t0 < 8


def test_sigterm_drains_open_sessions_within_grace(mefd_factory):
    """SIGTERM with a session open: mefd stops accepting, waits for it up to
    [limits] shutdown_grace, then closes it and exits 0 (mefd.c drain)."""
    d = mefd_factory(extra="[limits]\nshutdown_grace = 2\n")
    s = socket.create_connection((HOST, d.ports["https_psk"]))
    try:
        time.sleep(0.3)  # accepted: a handshaking session
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert d.proc.poll() is None, "exited before its grace with a session open"
        assert d.stop() == 0
    finally:
        s.close()
    log = d.log()
    assert "stopping: no new sessions, 1 active" in log, log
    assert "shutdown grace over, closing 1 session(s)" in log, log


def test_sighup_good_config(mefd_factory, pki):
    """A log level change applies on SIGHUP; the same process keeps serving.
    Sessions log at info (mefd.h), so the client's ID shows up only after
    the level went from error to info."""
    d = mefd_factory(level="error")
    cert = pki.clients["ae1"]
    d.add_cert_client(cert.san, cert.san)
    assert serves(d, cert)
    time.sleep(0.2)
    assert cert.san not in d.log(), "info-level line logged at level error"
    pid = d.pid
    d.write_conf(level="info")
    start = len(d.log())
    d.signal(signal.SIGHUP)
    time.sleep(0.3)
    ok = False
    for _ in range(10):   # the reload is asynchronous: retry for ~3 s
        assert d.alive(), d.log()
        if serves(d, cert) and cert.san in d.log()[start:]:
            ok = True
            break
        time.sleep(0.2)
    assert ok, f"no info-level session line after reload to info:\n{d.log()[start:]}"
    assert d.pid == pid and d.alive()


def test_sighup_broken_config_keeps_old(mefd_factory, pki):
    d = mefd_factory(level="info")
    cert = pki.clients["ae1"]
    d.add_cert_client(cert.san, cert.san)
    good = d.conf.read_text()
    bad = good.replace("[mef]\n", "[mef]\nbogus_reload_key = 1\n", 1)
    line = bad.splitlines().index("bogus_reload_key = 1") + 1
    d.conf.write_text(bad)
    start = len(d.log())
    d.signal(signal.SIGHUP)
    m = d.wait_log(rf"mefd\.conf:{line}\b", timeout=5, start=start)
    assert m, f"no mefd.conf:{line} in log after broken reload:\n{d.log()[start:]}"
    assert d.alive(), d.log()
    assert serves(d, cert), "stopped serving after a broken reload"
    d.conf.write_text(good)
    assert d.stop(expect_rc=None) == 0


def test_sighup_mismatched_tls_key_keeps_serving(mefd_factory, pki, tmp_path):
    """A reload whose TLS key no longer matches the certificate is refused
    (logged; the HTTPS listener refuses it first) and mefd keeps serving;
    once the key is put back, a second reload takes it and certificate
    sessions work again on HTTPS and DTLS (libcoap gets new DER buffers, and
    coapb frees the old set only after libcoap took the new one)."""
    crt, key = tmp_path / "mef.crt", tmp_path / "mef.key"
    shutil.copy(pki.mef.crt, crt)
    shutil.copy(pki.mef.key, key)
    os.chmod(key, 0o600)
    d = mefd_factory(level="info", start=False)
    good = d.conf.read_text().replace(f"certificate = {pki.mef.crt}", f"certificate = {crt}", 1)
    good = good.replace(f"private_key = {pki.mef.key}", f"private_key = {key}", 1)
    d.write_conf(text=good)
    d.start()
    cert = pki.clients["ae1"]
    d.add_cert_client(cert.san, cert.san)
    assert serves(d, cert)
    original = key.read_bytes()
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(key)], check=True, capture_output=True)
    os.chmod(key, 0o600)
    start = len(d.log())
    d.signal(signal.SIGHUP)
    assert d.wait_log(r"(?i)reload|key", timeout=5, start=start), d.log()[start:]
    time.sleep(0.5)
    assert d.alive(), d.log()
    key.write_bytes(original)
    start = len(d.log())
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    ok = False
    for _ in range(10):
        assert d.alive(), d.log()
        if serves(d, cert):
            ok = True
            break
        time.sleep(0.2)
    assert ok, d.log()[start:]
    assert d.stop(expect_rc=None) == 0


def _forms(b):
    return {b, b.hex().encode(), b.hex().upper().encode()}


def test_no_secrets_in_store_or_log(mefd_factory):
    """PSKs and Ke are stored wrapped (decisions §6) and never logged."""
    d = mefd_factory(level="debug")
    keys = []
    for i in range(3):
        ascii_key, key_hex = new_psk()
        ident = f"sec{i}@mef.example.com"
        d.add_psk_client(f"sec{i}", ident, key_hex)
        keys.append((ident, ascii_key, key_hex))
    mats = []
    for ident, _, key_hex in keys:
        mats += psk_bootstrap(d, ident, key_hex)
    assert mats, "no bootstrap handshake completed"
    secrets_ = []
    for _, ascii_key, _ in keys:
        secrets_ += _forms(ascii_key.encode())
    for m in mats:
        secrets_ += _forms(bytes.fromhex(m[32:]))          # Ke
    secrets_ += _forms((d.dir / "kek").read_bytes())

    def scan(where):
        for suffix in ("", "-wal", "-journal"):
            p = d.db.with_name(d.db.name + suffix)
            if p.exists():
                blob = p.read_bytes()
                for s in secrets_:
                    assert s not in blob, f"secret in clear in {p.name} ({where})"
        log = d.log().encode()
        for s in secrets_:
            assert s not in log, f"secret in the daemon log ({where})"
    scan("running")
    assert d.stop(expect_rc=None) == 0
    scan("stopped")


def test_mefctl_output_has_no_secrets(mefd):
    _, key_hex = new_psk()
    mefd.add_psk_client("quiet", "quiet@mef.example.com", key_hex)
    for args in (("client", "list"), ("client", "show", "quiet"),
                 ("client", "show", "quiet", "--json"), ("ke", "list", "--json")):
        out = mefd.ctl(*args).stdout
        assert key_hex not in out.lower() and bytes.fromhex(key_hex).decode() not in out, args
