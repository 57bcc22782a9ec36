# SPDX-License-Identifier: BSD-2-Clause
"""Faults and floods against a running mefd (docs/robustness.md).

kill -9 during a storm of bootstraps and mefctl registrations: the database
passes PRAGMA integrity_check, every Ke a client saw answered for (keying
material printed AND a GET /mef answer) is stored with the value the client
computed, and mefd restarts and serves. Floods (garbage UDP, garbage and
half-open TCP, idle connections, half-open DTLS handshakes, oversized bodies
and headers, deeply nested JSON), each with a legitimate client measured
alongside that must still succeed; mefd's RSS before and after is reported.
Every flood is bounded in count and time and stays on loopback."""

import json
import os
import random
import signal
import socket
import sqlite3
import struct
import threading
import time

import pytest

import harness
import rspf_util as u
from conftest import new_psk
from harness import BOOTSTRAP_LABEL, FQDN, HOST

# handshake_timeout low so idle connections are dropped within the test;
# body_max small so the oversize cases are cheap to send; the per-identity
# rate limits lifted: the legitimate client and the storm reconnect often
LIMITS = """
[limits]
handshake_timeout = 2
session_timeout = 4
body_max = 512
handshake_rate = 600000
handshake_burst = 100000
request_rate = 600000
request_burst = 100000
"""
RSS_REPORT = []


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(d, extra):
    """Starts d, on fresh ports if the chosen ones were taken meanwhile (the
    floods use many ephemeral ports, which free_port's choice can collide with)."""
    for attempt in range(3):
        try:
            return d.start()
        except AssertionError:
            if attempt == 2:
                raise
            d.ports = {k: harness.free_port() for k in d.ports}
            d.write_conf(extra=extra)


def get_mef_https(d, ident, key_hex, **kw):
    return harness.https_s_client(d.ports["https_psk"], proto="tls1_2",
                                  cipher="PSK-AES128-GCM-SHA256", psk_identity=ident,
                                  psk=key_hex, **kw)


def get_mef_dtls(d, ident, key_hex):
    return harness.coap_s_client(d.ports["coap"], proto="dtls1_2", cipher="PSK-AES128-CCM8",
                                 psk_identity=ident, psk=key_hex)


class Legit:
    """The legitimate client measured alongside each flood (HTTPS-PSK and CoAP/DTLS)."""

    def __init__(self, d):
        self.d = d
        self.ascii, self.hex = new_psk()
        self.ident = "legit@" + FQDN
        d.add_psk_client("legit", self.ident, self.hex)

    def ok(self, tries=3):
        """Both transports answer GET /mef; a few bounded retries (a flood may
        make one handshake wait past s_client's timeout, never forever)."""
        for _ in range(tries):
            h = get_mef_https(self.d, self.ident, self.hex)
            c = get_mef_dtls(self.d, self.ident, self.hex)
            if h.status == 200 and c is not None and c.code == "2.05":
                return True
            time.sleep(0.5)
        return False


@pytest.fixture(scope="module")
def flood_mefd(mefctl, pki, tmp_path_factory):
    d = harness.Mefd(tmp_path_factory.mktemp("flood"), pki, extra=LIMITS)
    start(d, LIMITS)
    d.legit = Legit(d)
    assert d.legit.ok(), d.log()[-3000:]
    RSS_REPORT.append(("start", rss_kb(d.pid)))
    yield d
    RSS_REPORT.append(("end", rss_kb(d.pid)))
    report = ", ".join(f"{k} {v} kB" for k, v in RSS_REPORT)
    print(f"\nmefd RSS: {report}")
    with open(d.dir / "rss.json", "w") as f:
        json.dump(RSS_REPORT, f)
    d.stop(expect_rc=0)


def during(d, flood, after_rss=True):
    """Runs flood() in a thread, measures the legitimate client meanwhile and
    after; mefd must stay up throughout."""
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    time.sleep(0.1)
    ok_during = d.legit.ok(tries=5)
    t.join(timeout=40)
    assert not t.is_alive(), "flood did not finish in time"
    assert d.alive(), "mefd died:\n" + d.log()[-3000:]
    ok_after = d.legit.ok()
    if after_rss:
        RSS_REPORT.append((flood.__name__, rss_kb(d.pid)))
    assert ok_during, "legitimate client failed during the flood:\n" + d.log()[-2000:]
    assert ok_after, "legitimate client failed after the flood:\n" + d.log()[-2000:]


# ------------------------------------------------------------------ raw packets

def dtls_client_hello(cookie=b"", seq=0, rnd=None):
    """A DTLS 1.2 ClientHello offering PSK suites (RFC 6347 4.2.1, RFC 4279)."""
    rnd = rnd or os.urandom(32)
    suites = bytes.fromhex("00a8c0a800ae")  # PSK-AES128-GCM-SHA256, PSK-AES128-CCM8, PSK-CBC
    body = (b"\xfe\xfd" + rnd + b"\x00" + bytes([len(cookie)]) + cookie +
            struct.pack(">H", len(suites)) + suites + b"\x01\x00")
    hs = (b"\x01" + struct.pack(">I", len(body))[1:] + struct.pack(">H", seq) +
          b"\x00\x00\x00" + struct.pack(">I", len(body))[1:] + body)
    return b"\x16\xfe\xfd" + b"\x00\x00" + struct.pack(">Q", seq)[2:] + struct.pack(">H", len(hs)) + hs


def hello_verify_cookie(rec):
    """The cookie of a HelloVerifyRequest record, or None."""
    if len(rec) < 13 + 12 + 3 or rec[0] != 0x16 or rec[13] != 3:
        return None
    n = rec[13 + 12 + 2]
    return rec[13 + 12 + 3:13 + 12 + 3 + n]


def tcp_conns(port, n, src_base=2, payload=None, timeout=1.0):
    """n connections from 127.0.0.<src_base..> (spread over source addresses
    so per-IP limits do not hide the load); sends payload if given."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.bind((f"127.0.0.{src_base + i % 200}", 0))
            s.connect((HOST, port))
            if payload:
                s.sendall(payload() if callable(payload) else payload)
            socks.append(s)
        except OSError:
            s.close()
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# ------------------------------------------------------------------ kill -9

def _boot(d, kind, ident, key_hex, results, lock):
    """One bootstrap that also asks GET /mef; records (keymat, answered)."""
    if kind == "https":
        r = get_mef_https(d, ident, key_hex, keymatexport=BOOTSTRAP_LABEL, timeout=4)
        got = (r.tls.keymat if r.tls else "", r.status == 200 and b"mefBase" in r.body)
    else:
        a = harness._s_client_args(d.ports["coap"], "dtls1_2", psk_identity=ident, psk=key_hex,
                                   cipher="PSK-AES128-CCM8", keymatexport=BOOTSTRAP_LABEL)
        out, err, rc = harness.run_until(a, harness.coap_udp_encode("0.01", "/mef"),
                                         lambda b: b"mefBase" in b, 4, grace=1)
        t = harness._parse_s_client(out.decode("latin-1"), err.decode(errors="replace"), rc)
        got = (t.keymat, b"mefBase" in out)
    with lock:
        results.append((ident, kind) + got)


def test_kill9_during_storm(mefd_factory):
    d = mefd_factory(extra=LIMITS, start=False)
    start(d, LIMITS)
    clients = []
    for i in range(6):
        _, key_hex = new_psk()
        ident = f"storm{i}@{FQDN}"
        d.add_psk_client(f"storm{i}", ident, key_hex)
        clients.append((ident, key_hex))
    results, regs, lock = [], [], threading.Lock()
    stop = threading.Event()

    def booter(n):
        for j in range(12):
            if stop.is_set():
                return
            ident, key_hex = clients[(n + j) % len(clients)]
            _boot(d, "https" if (n + j) % 2 else "dtls", ident, key_hex, results, lock)

    def registrar():
        for j in range(300):  # until the kill, at most 300
            if stop.is_set():
                return
            _, key_hex = new_psk()
            cp = d.ctl("client", "add", f"reg{j}", "--psk-identity", f"reg{j}@{FQDN}",
                       "--psk-hex", key_hex, check=False)
            regs.append((f"reg{j}", cp.returncode))

    threads = [threading.Thread(target=booter, args=(n,), daemon=True) for n in range(6)]
    threads.append(threading.Thread(target=registrar, daemon=True))
    for t in threads:
        t.start()
    # kill once some bootstraps have been answered (bounded wait)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sum(1 for r in results if r[3]) < 6:
        time.sleep(0.05)
    d.signal(signal.SIGKILL)
    d.proc.wait(timeout=5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    d.stop(expect_rc=None)

    con = sqlite3.connect(str(d.db))
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    answered = [r for r in results if r[2] and r[3]]
    assert answered, "no bootstrap was answered before the kill: %r" % results
    kes = {k["keID"]: k for k in u.ke_list(d, secrets=True)}
    for ident, kind, keymat, _ in answered:
        ekm = bytes.fromhex(keymat)
        k = kes.get(u.keid_of(ekm, FQDN))
        assert k is not None, f"{kind} Ke of {ident} answered but not stored"
        assert k["ke"] == u.ke_of(ekm).hex()
    ids = {c["clientID"] if "clientID" in c else c.get("id") for c in
           json.loads(d.ctl("client", "list", "--json").stdout)}
    for cid, rc in regs:
        if rc == 0:
            assert cid in ids, f"mefctl said {cid} was added, the store lost it"
    print(f"\nkill -9 storm: {len(results)} bootstraps, {len(answered)} answered, "
          f"{sum(1 for _, rc in regs if rc == 0)} registrations acknowledged, all present")
    # restart on the same files, and it serves
    d.start()
    ident, key_hex = clients[0]
    assert get_mef_https(d, ident, key_hex).status == 200
    c = get_mef_dtls(d, ident, key_hex)
    assert c is not None and c.code == "2.05"


# ------------------------------------------------------------------ floods

def test_udp_garbage(flood_mefd):
    d = flood_mefd

    def udp_garbage():
        rnd = random.Random(7)
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
        for i in range(4000):
            n = rnd.randint(1, 1400)
            pkt = bytes(rnd.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1)
            if i % 4 == 0:  # DTLS-looking record header with junk behind it
                pkt = b"\x16\xfe\xfd" + pkt[3:]
            if i % 16 == 0:  # CoAP-looking (plain CoAP is not served)
                pkt = harness.coap_udp_encode("0.01", "/mef", mid=i & 0xFFFF)
            try:
                socks[i % len(socks)].sendto(pkt[:n], (HOST, d.ports["coap"]))
            except OSError:
                pass
            if i % 500 == 0:
                time.sleep(0.01)
        close_all(socks)
    during(d, udp_garbage)


def test_tcp_garbage_and_half_open(flood_mefd):
    d = flood_mefd
    ports = [d.ports["coap"], d.ports["https_psk"], d.ports["https_cert"]]
    held = []

    def tcp_garbage():
        rnd = random.Random(11)
        for port in ports:
            junk = tcp_conns(port, 40, payload=lambda: bytes(rnd.getrandbits(8) for _ in range(2048)))
            tls_junk = tcp_conns(port, 20, payload=b"\x16\x03\x01\x40\x00" + os.urandom(1000))
            close_all(junk + tls_junk)
            held.extend(tcp_conns(port, 40))  # connected, silent: half-open for TLS
    during(d, tcp_garbage)
    close_all(held)


def _dropped(socks):
    """How many of socks the server has closed (EOF or reset), after
    whatever it sent last (a TLS alert before the close counts as closed)."""
    n = 0
    for s in socks:
        try:
            s.settimeout(0.01)
            for _ in range(8):
                if s.recv(64) == b"":
                    n += 1
                    break
        except ConnectionResetError:
            n += 1
        except OSError:
            pass
    return n


def test_slowloris_idle(flood_mefd):
    d = flood_mefd
    held = {}

    def slowloris():
        # a TLS record header and then silence, 100 per TCP port (below max_handshakes)
        for name in ("coap", "https_psk", "https_cert"):
            held[name] = tcp_conns(d.ports[name], 100, payload=b"\x16\x03\x01\x02\x00\x01")
    during(d, slowloris)
    # libcoap drops stalled TLS handshakes within session_timeout (4 s here)
    # and mefd's half-open sweep shuts the stalled HTTPS ones after handshake_timeout (2 s)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_dropped(v) < len(v) for v in held.values()):
        time.sleep(0.5)
    counts = {k: (_dropped(v), len(v)) for k, v in held.items()}
    for v in held.values():
        close_all(v)
    print(f"\nslowloris: dropped/held per port after the timeouts: {counts}")
    # under valgrind libcoap's idle sweep falls far behind (16 of 100 in 64 s)
    if not instrumented():
        assert counts["coap"][0] == counts["coap"][1], counts
        # MHD 0.9.75 alone would keep a handshake stalled inside its first
        # record for 10-16 s whatever the settings; httpb's sweep enforces
        # handshake_timeout on it.
        for name in ("https_psk", "https_cert"):
            assert counts[name][0] == counts[name][1], counts


def test_half_open_dtls(flood_mefd):
    d = flood_mefd
    stats = {"cookie": 0, "hello": 0}

    def dtls_half_open():
        socks = []
        for i in range(300):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.5)
            s.bind((f"127.0.0.{2 + i % 200}", 0))
            socks.append(s)
            try:
                s.sendto(dtls_client_hello(), (HOST, d.ports["coap"]))
                cookie = hello_verify_cookie(s.recv(2048))
                if cookie is None:
                    continue
                stats["cookie"] += 1
                # the second ClientHello with the cookie makes the server keep state
                s.sendto(dtls_client_hello(cookie, seq=1), (HOST, d.ports["coap"]))
                if s.recv(4096)[:1] == b"\x16":
                    stats["hello"] += 1
            except OSError:
                pass
        # stall: hold the sockets open while the legitimate client runs
        time.sleep(1.0)
        close_all(socks)
    during(d, dtls_half_open)
    print(f"\nhalf-open DTLS: 300 ClientHellos, {stats['cookie']} cookies, "
          f"{stats['hello']} ServerHellos (stalled there)")
    assert stats["hello"] > 0, "the flood never reached a stateful handshake"


def test_oversized(flood_mefd):
    d = flood_mefd
    lg = d.legit
    # body over body_max (512) with Content-Length: 413 before reading it
    r = get_mef_https(d, lg.ident, lg.hex, method="POST", body=b"x" * 20000,
                      headers={"Content-Type": "application/json"})
    assert r.status == 413, (r.status, r.body)
    # announced but not sent: refused from the header alone
    req = (b"POST /mef HTTP/1.1\r\nHost: " + FQDN.encode() + b"\r\nX-M2M-RI: big\r\n"
           b"Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n")
    a = harness._s_client_args(d.ports["https_psk"], "tls1_2", psk_identity=lg.ident,
                               psk=lg.hex, cipher="PSK-AES128-GCM-SHA256") + ["-ign_eof"]
    out, _, _ = harness.run_until(a, req,
                                  lambda b: harness.parse_http(b) is not None, 6, grace=1)
    resp = harness.parse_http(out)
    assert resp is not None and resp.status in (400, 413), out[-500:]
    # a 64 KiB header: MHD's per-connection memory limit answers 431 or closes
    big = get_mef_https(d, lg.ident, lg.hex, headers={"X-Big": "a" * 65536})
    assert big.status in (0, 400, 413, 431), big.status
    # CoAP over DTLS: a payload over body_max in one datagram (no block-wise)
    c = harness.coap_s_client(d.ports["coap"], code="0.02", proto="dtls1_2",
                              cipher="PSK-AES128-CCM8", psk_identity=lg.ident, psk=lg.hex,
                              options=[(12, b"\x32")], payload=b"{" + b" " * 900 + b"}")
    assert c is not None and c.code.startswith("4."), c
    print(f"\noversized: HTTP body {r.status}, announced 99999999999 {resp.status}, "
          f"64 KiB header {big.status or 'closed'}, CoAP/DTLS 902-byte body {c.code}")
    # CoAP over TLS: 8 KiB body in one message
    c = harness.coap_s_client(d.ports["coap"], code="0.02", proto="tls1_2",
                              cipher="PSK-AES128-GCM-SHA256", psk_identity=lg.ident, psk=lg.hex,
                              options=[(12, b"\x32")], payload=b"[" * 8192)
    assert c is None or c.code.startswith("4."), c
    assert d.alive() and lg.ok()
    RSS_REPORT.append(("oversized", rss_kb(d.pid)))


def test_deep_json(flood_mefd):
    d = flood_mefd
    lg = d.legit
    deep = b"[" * 4000 + b"]" * 4000
    deep_obj = b'{"a":' * 1000 + b"1" + b"}" * 1000
    for path in ("/mef", "/mef/sec:mefClientReg", "/"):
        for body in (deep, deep_obj):
            r = get_mef_https(d, lg.ident, lg.hex, method="POST", path=path, body=body,
                              headers={"Content-Type": "application/json"})
            assert 400 <= r.status < 500 or r.status == 0, (path, r.status, r.body[:200])
            c = harness.coap_s_client(d.ports["coap"], code="0.02", path=path, proto="tls1_2",
                                      cipher="PSK-AES128-GCM-SHA256", psk_identity=lg.ident,
                                      psk=lg.hex, options=[(12, b"\x32")], payload=body[:4000])
            assert c is None or c.code.startswith("4."), c
    assert d.alive() and lg.ok()


def instrumented():
    """ASan keeps freed memory in quarantine and valgrind runs mefd on its own
    heap: RSS says nothing about mefd's memory there."""
    with open(harness.MEFD, "rb") as f:
        return b"__asan_init" in f.read() or bool(os.environ.get("MEFD_WRAPPER"))


def test_rss_bounded(flood_mefd):
    """Last in the module: RSS after every flood stays near where it started."""
    start = RSS_REPORT[0][1]
    now = rss_kb(flood_mefd.pid)
    RSS_REPORT.append(("final", now))
    if instrumented():
        pytest.skip(f"RSS of an instrumented mefd is not meaningful: {RSS_REPORT}")
    assert now < start + 64 * 1024, f"RSS grew from {start} kB to {now} kB: {RSS_REPORT}"
