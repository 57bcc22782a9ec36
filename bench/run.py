#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""make bench: one throw-away mefd (durable store, default log level) and the
bare-library baselines (bench/bare_coap.c, bench/bare_mhd.c) on loopback,
driven by build-bench/bench; per scenario alternating runs (mefd, bare, mefd,
bare, ...), medians of 3, printed as ONE table with the ratio mefd/bare.
Bounded: each run is BENCH_SECS seconds (default 1.5), whole run < 5 min.
  bench/run.py                 the table (also build-bench/results.json)
  bench/run.py --only NAME [--perf FILE]   one scenario, mefd only (perf record -g)
  bench/run.py --only NAME [--bare] --attach CMD   one scenario, mefd only (--bare: the bare
                               server only), with CMD running beside the measured run; in CMD
                               {pid} is mefd, {bare_coap} {bare_psk} {bare_cert} the bare servers,
                               e.g. --attach "perf stat -e context-switches -p {pid}"
  bench/run.py --rows A,B      only the rows whose name contains A or B, with their baselines
  BENCH_AUDIT=1 bench/run.py ...   the same with mefd's audit trail enabled ([audit] path)
  bench/run.py --scale         empty store vs 1,000,000 Ke / 100,000 clients (BENCH_KE, BENCH_CLIENTS)
  bench/run.py --idle N        RSS of N idle DTLS sessions, mefd vs bare_coap
  bench/run.py --compare BIN   PSK rows: mefd binary BIN (before) vs build/mefd (after)
  bench/run.py --metrics NAME  one scenario, mefd only, with [metrics]: group commit batch size and
                               latency, store-call latencies (mefd_group_commit_*, mefd_store_seconds)
  bench/run.py --durable-bare  PSK rows: mefd, the bare server, and the bare server made durable
                               (BARE_DURABLE: a group-committed record and fdatasync per answer)"""

import base64
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / os.environ.get("MEFD_BUILD", "build")
BB = ROOT / "build-bench"
LIMITS = (ROOT / "bench" / "limits-lifted.conf").read_text()  # shared with the load tests
BENCH = BB / "bench"
SECS = float(os.environ.get("BENCH_SECS", "1.5"))
CONC = int(os.environ.get("BENCH_CONC", "16"))
FQDN = "mef.example.com"
GROUP_SECRET = "6d65666462656e636867726f7570736563726574"
PSK = "000102030405060708090a0b0c0d0e0f"
MAF_PSK = "0f0e0d0c0b0a09080706050403020100"
KR_PSK = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
EST_PSK = "62656e63682d6573742d70736b2d30313233343536373839"


def free_port():
    for _ in range(100):
        t, u = socket.socket(), socket.socket(type=socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            p = t.getsockname()[1]
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no port")


def sh(*a, **kw):
    return subprocess.run([str(x) for x in a], check=True, capture_output=True, text=True, **kw)


def pki(d):
    """P-256 CA, MEF certificate and one client certificate (URI SAN)."""
    def key(n):
        sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-out", d / f"{n}.key")
        os.chmod(d / f"{n}.key", 0o600)
    key("ca")
    sh("openssl", "req", "-x509", "-new", "-key", d / "ca.key", "-subj", "/CN=bench CA",
       "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext",
       "subjectKeyIdentifier=hash", "-out", d / "ca.crt")
    for n, san, eku in (("mef", f"DNS:{FQDN},IP:127.0.0.1", "serverAuth"),
                        ("cli", "URI://bench.example.com/c1", "clientAuth")):
        key(n)
        sh("openssl", "req", "-new", "-key", d / f"{n}.key", "-subj", f"/CN={n}",
           "-out", d / f"{n}.csr")
        (d / f"{n}.ext").write_text(
            f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage={eku}\nsubjectAltName={san}\nauthorityKeyIdentifier=keyid\n")
        sh("openssl", "x509", "-req", "-in", d / f"{n}.csr", "-CA", d / "ca.crt", "-CAkey",
           d / "ca.key", "-CAcreateserial", "-days", "30", "-sha256", "-extfile",
           d / f"{n}.ext", "-out", d / f"{n}.crt")
    sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-out", d / "est.key")
    sh("openssl", "req", "-new", "-key", d / "est.key", "-subj", "/CN=est", "-addext",
       "subjectAltName=URI:urn:x-onem2m-mef:client:est", "-outform", "DER", "-out", d / "est.der")


def wait_port(port, proc, t=10):
    end = time.monotonic() + t
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port never opened")


class Mefd:
    def __init__(self, d, p, db=None, extra="", binary=None):
        self.d, self.p = d, p
        self.binary = binary or BUILD / "mefd"
        self.ports = {k: free_port() for k in ("coap", "psk", "cert")}
        (d / "kek").write_bytes(os.urandom(32))
        os.chmod(d / "kek", 0o600)
        self.conf = d / "mefd.conf"
        self.db = db or d / "mefd.db"
        self.conf.write_text(f"""[mef]
fqdn = {FQDN}
[store]
path = {self.db}
kek_file = {d}/kek
[coap]
listen = 127.0.0.1:{self.ports['coap']}
[https]
psk_listen = 127.0.0.1:{self.ports['psk']}
cert_listen = 127.0.0.1:{self.ports['cert']}
[tls]
certificate = {p}/mef.crt
private_key = {p}/mef.key
client_ca = {p}/ca.crt
[ca]
certificate = {p}/ca.crt
private_key = {p}/ca.key
{LIMITS}{f"[audit]{chr(10)}path = {d}/audit.log{chr(10)}" if os.environ.get("BENCH_AUDIT") else ""}{extra}""")
        self.proc = None

    def ctl(self, *a):
        # the mefctl next to the binary under test (its schema), else the build's
        ctl = self.binary.parent / "mefctl"
        return sh(ctl if ctl.exists() else BUILD / "mefctl", "-c", self.conf, *a)

    def provision(self):
        self.ctl("group", "add", "bench", "--pattern", "*@bench.example.com", "--secret-hex",
                 GROUP_SECRET, "--target", "maf:11")
        self.ctl("client", "add", "cert1", "--cert-san", "//bench.example.com/c1")
        self.ctl("client", "add", "maf", "--psk-identity", "maf@bench.example.com",
                 "--psk-hex", MAF_PSK)
        self.ctl("client", "add", "kr1", "--psk-identity", "kr1@bench.example.com",
                 "--psk-hex", KR_PSK)
        self.ctl("client", "add", "est", "--psk-identity", "est@bench.example.com",
                 "--psk-hex", EST_PSK)

    def start(self):
        self.log = open(self.d / "mefd.log", "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "--foreground"],
                                     stdout=self.log, stderr=self.log, cwd=self.d)
        wait_port(self.ports["psk"], self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


@contextlib.contextmanager
def workdir(prefix, *names):
    """A throw-away directory holding a PKI in pki/ and an empty folder per name."""
    with tempfile.TemporaryDirectory(prefix=prefix) as t:
        t = Path(t)
        for x in ("pki", *names):
            (t / x).mkdir()
        pki(t / "pki")
        yield t


def mefd_up(d, p, **kw):
    """A provisioned, started mefd in folder d with the PKI in p (stop() it)."""
    m = Mefd(d, p, **kw)
    m.provision()
    m.start()
    return m


class Bare:
    def __init__(self, p):
        self.coap, self.psk, self.cert = free_port(), free_port(), free_port()
        self.log = open(p / "bare.log", "ab")
        kw = {"stdout": self.log, "stderr": self.log}
        self.procs = [
            subprocess.Popen([BB / "bare_coap", str(self.coap), PSK, p / "mef.crt", p / "mef.key",
                              p / "ca.crt"], **kw),
            subprocess.Popen([BB / "bare_mhd", str(self.psk), PSK], **kw),
            subprocess.Popen([BB / "bare_mhd", str(self.cert), "-", p / "mef.crt", p / "mef.key",
                              p / "ca.crt"], **kw)]
        for port, pr in zip((self.coap, self.psk, self.cert), self.procs):
            wait_port(port, pr)

    def stop(self):
        for pr in self.procs:
            pr.terminate()
            pr.wait(5)


def cpu_ticks(pids):
    """utime+stime of the server processes (all threads), in clock ticks."""
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total


def run_bench(args, secs=SECS, conc=CONC, pids=()):
    c0 = cpu_ticks(pids)
    cp = subprocess.run([str(BENCH), "-t", str(secs), "-c", str(conc), *map(str, args)],
                        capture_output=True, text=True, timeout=60 + secs)
    c1 = cpu_ticks(pids)
    m = dict(re.findall(r"(\w+)=([\d.]+)", cp.stdout))
    if not m:
        return {"ok": 0, "fail": 0, "rate": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "cpu_us": 0.0,
                "err": cp.stderr[-300:]}
    r = {k: float(v) for k, v in m.items()}
    # server CPU per answered request: the cost that does not depend on latency
    r["cpu_us"] = (c1 - c0) * 1e6 / os.sysconf("SC_CLK_TCK") / r["ok"] if r.get("ok") else 0.0
    return r


def grp(ident="b%lu@bench.example.com"):
    return ["-g", GROUP_SECRET, "-i", ident, "-r", "100000000"]


def scenarios(p, m, b, ctx):
    """(name, mefd args, bare args): the bare run does the same handshake and one request."""
    cert = ["-C", p / "cli.crt", "-K", p / "cli.key", "-A", p / "ca.crt"]
    bare_psk = ["-k", PSK]
    kr_body = json.dumps({"sec:mefKeyReg": {"et": "20991231T000000", "adminFQDN":
                                            "admin.example.com", "SUID": 11,
                                            "targetIDs": ["maf"]}})
    out = []
    for name, proto, v3 in (("DTLS 1.2", "dtls", False), ("coaps+tcp TLS 1.2", "coap-tcp", False),
                            ("coaps+tcp TLS 1.3", "coap-tcp", True),
                            ("HTTPS TLS 1.2", "https", False), ("HTTPS TLS 1.3", "https", True)):
        coap = proto != "https"
        mp, bp = (m.ports["coap"], b.coap) if coap else (m.ports["psk"], b.psk)
        extra = ["-3"] if v3 else []
        out.append((f"PSK bootstrap {name}", ["-P", proto, "-p", mp, *extra, *grp()],
                    ["-P", proto, "-p", bp, *extra, *bare_psk]))
    for name, proto, v3 in (("DTLS 1.2", "dtls", False), ("coaps+tcp TLS 1.3", "coap-tcp", True),
                            ("HTTPS TLS 1.2", "https", False), ("HTTPS TLS 1.3", "https", True)):
        coap = proto != "https"
        mp, bp = (m.ports["coap"], b.coap) if coap else (m.ports["cert"], b.cert)
        extra = ["-3"] if v3 else []
        out.append((f"cert bootstrap {name}", ["-P", proto, "-p", mp, *extra, *cert, "-o", "cert1"],
                    ["-P", proto, "-p", bp, *extra, *cert]))
    if ctx.get("keid"):
        path = f"/fetchCredentials/{ctx['keid']}/11"
        maf = ["-k", MAF_PSK, "-i", "maf@bench.example.com", "-r", "1", "-o", "maf"]
        out.append(("fetchCredentials HTTPS TLS 1.3", ["-P", "https", "-3", "-p", m.ports["psk"],
                                                       "-u", path, *maf],
                    ["-P", "https", "-3", "-p", b.psk, "-u", path, *bare_psk]))
        out.append(("fetchCredentials DTLS 1.2", ["-P", "dtls", "-p", m.ports["coap"], "-u", path,
                                                  *maf],
                    ["-P", "dtls", "-p", b.coap, "-u", path, *bare_psk]))
    kr = ["-k", KR_PSK, "-i", "kr1@bench.example.com", "-r", "1", "-o", "kr1"]
    out.append(("key registration HTTPS TLS 1.3",
                ["-P", "https", "-3", "-p", m.ports["psk"], "-m", "POST", "-u", "/mef", "-d",
                 kr_body, "-T", "application/vnd.onem2m-res+json; ty=60002", *kr],
                ["-P", "https", "-3", "-p", b.psk, "-m", "POST", "-u", "/mef", "-d", kr_body,
                 *bare_psk]))
    if ctx.get("rel"):
        out.append(("key retrieval HTTPS TLS 1.3",
                    ["-P", "https", "-3", "-p", m.ports["psk"], "-u", f"/mef/{ctx['rel']}",
                     "-k", MAF_PSK, "-i", "maf@bench.example.com", "-r", "1", "-o", "maf"],
                    ["-P", "https", "-3", "-p", b.psk, "-u", f"/mef/{ctx['rel']}", *bare_psk]))
    if ctx.get("csr"):
        out.append(("EST simpleenroll HTTPS TLS 1.3 PSK",
                    ["-P", "https", "-3", "-p", m.ports["psk"], "-m", "POST", "-u",
                     "/.well-known/est/simpleenroll", "-d", ctx["csr"], "-T",
                     "application/pkcs10", "-k", EST_PSK, "-i", "est@bench.example.com",
                     "-r", "1", "-o", "est"],
                    ["-P", "https", "-3", "-p", b.psk, "-m", "POST", "-u",
                     "/.well-known/est/simpleenroll", "-d", ctx["csr"], *bare_psk]))
        # RFC 9148 over DTLS: the DER CSR in one message (Content-Format 286)
        out.append(("EST simpleenroll DTLS 1.2 PSK",
                    ["-P", "dtls", "-p", m.ports["coap"], "-m", "POST", "-u", "/est/sen",
                     "-F", p / "est.der", "-T", "286", "-k", EST_PSK, "-i",
                     "est@bench.example.com", "-r", "1", "-o", "est"],
                    ["-P", "dtls", "-p", b.coap, "-m", "POST", "-u", "/est/sen", "-F",
                     p / "est.der", *bare_psk]))
    return out


def prepare_ctx(p, m):
    """One bootstrap (a KeID to fetch), one client registration, one key registration."""
    ctx = {}
    run_bench(["-P", "https", "-3", "-p", m.ports["psk"], "-n", "1", *grp("seed%lu@bench.example.com")],
              secs=5, conc=1)
    try:
        kes = json.loads(m.ctl("ke", "list", "--json").stdout)
        ctx["keid"] = kes[0]["keID"]
    except Exception as e:  # noqa: BLE001 - the fetch rows are just left out
        print("bench: no KeID to fetch:", e, file=sys.stderr)
    reg = json.dumps({"sec:mefClientReg": {"et": "20991231T000000",
                                           "adminFQDN": "admin.example.com"}})
    run_bench(["-P", "https", "-3", "-p", m.ports["psk"], "-n", "1", "-m", "POST", "-u", "/mef",
               "-d", reg, "-T", "application/vnd.onem2m-res+json; ty=60001",
               "-k", KR_PSK, "-i", "kr1@bench.example.com", "-r", "1", "-o", "kr1"], secs=5, conc=1)
    kv = json.dumps({"sec:mefKeyReg": {"et": "20991231T000000", "adminFQDN": "admin.example.com",
                                       "SUID": 11, "targetIDs": ["maf"],
                                       "keyValue": base64.b64encode(os.urandom(32)).decode()}})
    cp = subprocess.run([str(BENCH), "-P", "https", "-3", "-p", str(m.ports["psk"]), "-n", "1",
                         "-c", "1", "-m", "POST", "-u", "/mef", "-d", kv, "-T",
                         "application/vnd.onem2m-res+json; ty=60002", "-k", KR_PSK, "-i",
                         "kr1@bench.example.com", "-r", "1", "-o", "kr1", "-v"],
                        capture_output=True, text=True, timeout=30)
    rel = re.search(r'"relativeKeyID"\s*:\s*"([0-9A-F]{32})"', cp.stderr)
    if rel:
        ctx["rel"] = rel.group(1)
    else:
        print("bench: key registration for the retrieval row failed:", cp.stderr[-300:],
              file=sys.stderr)
    if os.path.exists(p / "est.der"):
        ctx["csr"] = base64.b64encode((p / "est.der").read_bytes()).decode()
    return ctx


def machine():
    cpu = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {SECS:g} s per run, "
            f"{CONC} concurrent clients, medians of 3 alternating runs; mefd durable "
            f"(SQLite WAL, synchronous=FULL), log level info")


def table(rows):
    """Rates and their ratio; then server CPU per request (mefd and bare, in microseconds)."""
    lines = [f"| {'scenario':<36} | {'mefd /s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | "
             f"{'bare /s':>8} | {'ratio':>5} | {'fail':>4} | {'cpu us':>6} | {'bare us':>7} |",
             "|" + "|".join("-" * w for w in (38, 10, 9, 9, 10, 7, 6, 8, 9)) + "|"]
    for r in rows:
        ratio = r["rate"] / r["bare"] if r["bare"] else 0
        lines.append(f"| {r['name']:<36} | {r['rate']:>8.0f} | {r['p50']:>7.2f} | "
                     f"{r['p99']:>7.2f} | {r['bare']:>8.0f} | {ratio:>5.2f} | {r['fail']:>4.0f} | "
                     f"{r.get('cpu', 0):>6.0f} | {r.get('bare_cpu', 0):>7.0f} |")
    return "\n".join(lines)


def measure(scen, only=None, rows_like=None, mpids=(), bpids=(), bare_only=False):
    rows = []
    for name, margs, bargs in scen:
        if only and only.lower() not in name.lower():
            continue
        if rows_like and not any(x.lower() in name.lower() for x in rows_like):
            continue
        ms, bs = [], []
        for _ in range(1 if only else 3):
            if bare_only:
                ms.append(run_bench(bargs, pids=bpids))
                continue
            ms.append(run_bench(margs, pids=mpids))
            if not only:
                bs.append(run_bench(bargs, pids=bpids))
        med = lambda xs, k: statistics.median(x[k] for x in xs) if xs else 0.0  # noqa: E731
        rows.append({"name": name + (" [bare server]" if bare_only else ""),
                     "rate": med(ms, "rate"), "p50": med(ms, "p50_ms"),
                     "p99": med(ms, "p99_ms"), "bare": med(bs, "rate"),
                     "fail": sum(x["fail"] for x in ms), "runs": ms, "bare_runs": bs,
                     "cpu": med(ms, "cpu_us"), "bare_cpu": med(bs, "cpu_us")})
        if ms[0].get("err"):
            print(f"bench: {name}: {ms[0]['err']}", file=sys.stderr)
    return rows


def ecdsa_ceiling():
    cp = subprocess.run(["openssl", "speed", "-seconds", "2", "ecdsap256"], capture_output=True,
                        text=True, timeout=60)
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", cp.stdout)
    if not m:
        return None
    sign, verify = float(m.group(1)), float(m.group(2))
    return sign, verify, 1 / (1 / sign + 1 / verify)


def pki_setup(p):
    """What libcoap 4.3.1 re-does per certificate / TLS 1.3-over-TCP handshake (coapb_der_load)."""
    cp = subprocess.run([str(BB / "pki_setup"), str(p / "mef.crt"), str(p / "mef.key"),
                         str(p / "ca.crt"), "1000"], capture_output=True, text=True, timeout=60)
    if cp.returncode != 0:
        return None
    return ("libcoap per-handshake PKI setup (bench/pki_setup.c): " +
            ", ".join(cp.stdout.strip().splitlines()))


def ca_cost(p):
    """The CA's own work per enrolment against bare ECDSA verify+sign (bench/ca_issue.c)."""
    cp = subprocess.run([str(BB / "ca_issue"), str(p / "ca.crt"), str(p / "ca.key"), "2000"],
                        capture_output=True, text=True, timeout=120)
    return "CA alone (bench/ca_issue.c): " + cp.stdout.strip() if cp.returncode == 0 else None


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def hold(port, n, args):
    """Opens n idle DTLS sessions (bench -H) and returns (process, held count)."""
    pr = subprocess.Popen([str(BENCH), "-P", "dtls", "-p", str(port), "-H", str(n), *args],
                          stdout=subprocess.PIPE, text=True)
    line = pr.stdout.readline()
    m = re.search(r"held=(\d+)", line)
    return pr, int(m.group(1)) if m else 0


def idle(n):
    """RSS per idle DTLS session: mefd vs the bare libcoap server, same session count."""
    with workdir("mefd-idle.", "mefd") as t:
        m = mefd_up(t / "mefd", t / "pki", extra=f"max_sessions = {n + 100}\nsession_timeout = 600\n")
        port = free_port()
        log = open(t / "bare.log", "ab")
        bare = subprocess.Popen([BB / "bare_coap", str(port), PSK], stdout=log, stderr=log,
                                env=dict(os.environ, BARE_MAX_SESSIONS=str(n + 100)))
        time.sleep(0.5)
        out = {}
        try:
            for name, pid, p, a in (("mefd", m.proc.pid, m.ports["coap"], grp()),
                                    ("bare_coap", bare.pid, port, ["-k", PSK])):
                before = rss_kb(pid)
                pr, held = hold(p, n, a)
                time.sleep(1)
                after = rss_kb(pid)
                pr.kill()
                pr.wait()
                out[name] = (before, after, held)
        finally:
            bare.terminate()
            bare.wait(5)
            m.stop()
    lines = [f"idle DTLS sessions: {n} requested"]
    for name, (b, a, h) in out.items():
        per = (a - b) * 1024 / h if h else 0
        lines.append(f"  {name:<9} RSS {b} kB -> {a} kB with {h} sessions held: {per:.0f} bytes/session")
    if all(v[2] for v in out.values()):
        pm = (out["mefd"][1] - out["mefd"][0]) * 1024 / out["mefd"][2]
        pb = (out["bare_coap"][1] - out["bare_coap"][0]) * 1024 / out["bare_coap"][2]
        lines.append(f"  mefd beyond libcoap: {pm - pb:.0f} bytes/session")
    return "\n".join(lines)


def scale(n_clients, n_ke):
    """Rates on an empty store vs one with n_ke Ke and n_clients registered clients, and what
    each mefd's /metrics says of the same runs: the PSK lookup (client_find_psk, which includes
    the credential stamp) and the group commit."""
    with workdir("mefd-scale.", "empty", "full") as t:
        mp = {"empty": free_port(), "full": free_port()}
        e = Mefd(t / "empty", t / "pki", extra=f"[metrics]\nlisten = 127.0.0.1:{mp['empty']}\n")
        e.provision()
        f = Mefd(t / "full", t / "pki", extra=f"[metrics]\nlisten = 127.0.0.1:{mp['full']}\n")
        f.provision()
        t0 = time.monotonic()
        sh(BB / "populate", f.db, t / "full" / "kek", GROUP_SECRET, n_clients, n_ke)
        fill = time.monotonic() - t0
        e.start()
        f.start()
        rows = []
        try:
            reg = ["-g", GROUP_SECRET, "-i", "s%lu@scale.example.com", "-r", str(n_clients)]
            for name, proto, key, v3 in (("PSK DTLS 1.2", "dtls", "coap", []),
                                         ("PSK HTTPS TLS 1.3", "https", "psk", ["-3"])):
                for who, ids in (("group member", grp()), ("registered client", reg)):
                    es, fs = [], []
                    before = {k: scrape(p) for k, p in mp.items()}
                    for _ in range(3):
                        es.append(run_bench(["-P", proto, "-p", e.ports[key], *v3, *grp()]))
                        fs.append(run_bench(["-P", proto, "-p", f.ports[key], *v3, *ids]))
                    st = {k: store_figures(before[k], scrape(p)) for k, p in mp.items()}
                    er = statistics.median(x["rate"] for x in es)
                    fr = statistics.median(x["rate"] for x in fs)
                    rows.append(f"| {name + ', ' + who:<40} | {er:>8.0f} | {fr:>8.0f} | "
                                f"{fr / er if er else 0:>5.2f} | "
                                f"{sum(x['fail'] for x in fs):>4.0f} | "
                                f"{st['empty'][0]:>5.1f} / {st['full'][0]:>5.1f} | "
                                f"{st['empty'][1]:>5.2f} / {st['full'][1]:>5.2f} |")
        finally:
            e.stop()
            f.stop()
        size = os.path.getsize(f.db) // (1 << 20)
    return "\n".join([f"scale: {n_ke} Ke and {n_clients} PSK clients filled in {fill:.1f} s "
                      f"(store {size} MiB); empty store = the bench group only",
                      f"| {'scenario':<40} | {'empty /s':>8} | {'full /s':>8} | ratio | fail |"
                      " lookup us e/f | commit ms e/f |",
                      "|" + "-" * 42 + "|----------|----------|-------|------|---------------|"
                      "---------------|", *rows])


def store_figures(a, b):
    """(mean PSK lookup us, mean group commit ms) between two scrapes of one mefd."""
    d = {k: b[k] - a.get(k, 0) for k in b}
    n = d.get('mefd_store_seconds_count{op="client_find_psk"}', 0)
    c = d.get("mefd_group_commit_seconds_count", 0)
    return (d['mefd_store_seconds_sum{op="client_find_psk"}'] / n * 1e6 if n else 0.0,
            d["mefd_group_commit_seconds_sum"] / c * 1e3 if c else 0.0)


def compare(before_bin):
    """Before/after: the PSK bootstrap rows on two mefd binaries, alternating, medians of 3;
    cpu = mefd's CPU microseconds per bootstrap."""
    with workdir("mefd-cmp.", "a", "b") as t:
        a = mefd_up(t / "a", t / "pki", binary=Path(before_bin).resolve())
        b = mefd_up(t / "b", t / "pki")
        rows = []
        try:
            for name, proto, key, v3 in (("DTLS 1.2", "dtls", "coap", []),
                                         ("coaps+tcp TLS 1.2", "coap-tcp", "coap", []),
                                         ("coaps+tcp TLS 1.3", "coap-tcp", "coap", ["-3"]),
                                         ("HTTPS TLS 1.2", "https", "psk", []),
                                         ("HTTPS TLS 1.3", "https", "psk", ["-3"])):
                xs, ys = [], []
                for _ in range(3):
                    xs.append(run_bench(["-P", proto, "-p", a.ports[key], *v3, *grp()],
                                        pids=[a.proc.pid]))
                    ys.append(run_bench(["-P", proto, "-p", b.ports[key], *v3, *grp()],
                                        pids=[b.proc.pid]))
                x = statistics.median(r["rate"] for r in xs)
                y = statistics.median(r["rate"] for r in ys)
                px = statistics.median(r["p99_ms"] for r in xs)
                py = statistics.median(r["p99_ms"] for r in ys)
                cx = statistics.median(r.get("cpu_us", 0) for r in xs)
                cy = statistics.median(r.get("cpu_us", 0) for r in ys)
                rows.append(f"| PSK bootstrap {name:<19} | {x:>8.0f} | {y:>8.0f} | "
                            f"{y / x if x else 0:>5.2f} | {px:>7.1f} | {py:>7.1f} | "
                            f"{cx:>7.0f} | {cy:>7.0f} |")
        finally:
            a.stop()
            b.stop()
    return "\n".join([f"before = {before_bin}, after = {BUILD / 'mefd'}",
                      f"| {'scenario':<33} | before/s |  after/s | gain  | p99 bef | p99 aft | "
                      f"cpu bef | cpu aft |",
                      "|" + "-" * 35 + "|----------|----------|-------|---------|---------|"
                      "---------|---------|",
                      *rows])


def scrape(port):
    """The samples of mefd's /metrics as {series: value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            name, _, val = ln.rpartition(" ")
            out[name] = float(val)
    return out


def with_metrics(name):
    """One scenario against a mefd with [metrics]: what its counters say about that run."""
    with workdir("mefd-metrics.", "mefd") as t:
        port = free_port()
        m = mefd_up(t / "mefd", t / "pki", extra=f"[metrics]\nlisten = 127.0.0.1:{port}\n")
        b = Bare(t / "pki")
        try:
            sc = [x for x in scenarios(t / "pki", m, b, prepare_ctx(t / "pki", m)) if x[0] == name]
            if not sc:
                sys.exit(f"no scenario named {name!r}")
            before = scrape(port)
            r = run_bench(sc[0][1], pids=[m.proc.pid])
            after = scrape(port)
        finally:
            b.stop()
            m.stop()
    d = {k: after[k] - before.get(k, 0) for k in after}
    n = d.get("mefd_group_commit_seconds_count", 0)
    lines = [f"{name}: {r['rate']:.0f}/s, {r['fail']:.0f} failed, mefd {r['cpu_us']:.0f} us CPU "
             f"per request"]
    if n:
        lines.append(f"  group commits: {n:.0f}, {d['mefd_group_commit_rows_total'] / n:.1f} rows "
                     f"each, mean {d['mefd_group_commit_seconds_sum'] / n * 1e3:.3f} ms")
        prev, dist = 0, []
        for k in sorted((k for k in d if k.startswith("mefd_group_commit_seconds_bucket")),
                        key=lambda k: float(k.split('le="')[1].rstrip('"}').replace("+Inf", "inf"))):
            le = k.split('le="')[1].rstrip('"}')
            dist.append(f"<={le}s {100 * (d[k] - prev) / n:.0f}%")
            prev = d[k]
        lines.append("  commit latency: " + ", ".join(x for x in dist if not x.endswith(" 0%")))
        lines.append("  mean per commit: " + ", ".join(
            f"{ph} {d[k] / n * 1e6:.0f} us" for ph in ("handoff", "write", "commit", "notify")
            if (k := f'mefd_group_commit_phase_seconds_total{{phase="{ph}"}}') in d))
    for k in sorted(k for k in d if k.startswith("mefd_store_seconds_count")):
        op = k.split('op="')[1].rstrip('"}')
        if d[k]:
            mean = d[f'mefd_store_seconds_sum{{op="{op}"}}'] / d[k] * 1e6
            lines.append(f"  store {op}: {d[k]:.0f} calls, mean {mean:.1f} us")
    return "\n".join(lines)


def durable_bare():
    """The PSK rows against three servers: mefd, the bare server, and the bare server with
    BARE_DURABLE, which writes a record per request and answers only once a group-committed
    fdatasync covers it (docs/performance.md section 9). Alternating runs, medians of 3."""
    with workdir("mefd-durable.", "mefd", "bare") as t:
        m = mefd_up(t / "mefd", t / "pki")
        b = Bare(t / "pki")
        dport = {"coap": free_port(), "psk": free_port()}
        env = {k: dict(os.environ, BARE_DURABLE=str(t / "bare" / k)) for k in dport}
        kw = {"stdout": b.log, "stderr": b.log}
        p = t / "pki"  # the same arguments as Bare's, so only BARE_DURABLE differs
        dur = {"coap": subprocess.Popen([BB / "bare_coap", str(dport["coap"]), PSK, p / "mef.crt",
                                         p / "mef.key", p / "ca.crt"], env=env["coap"], **kw),
               "psk": subprocess.Popen([BB / "bare_mhd", str(dport["psk"]), PSK], env=env["psk"],
                                       **kw)}
        bare = {"coap": (b.coap, b.procs[0].pid), "psk": (b.psk, b.procs[1].pid)}
        rows = []
        try:
            for k, pr in dur.items():
                wait_port(dport[k], pr)
            for name, proto, v3 in (("DTLS 1.2", "dtls", []), ("coaps+tcp TLS 1.2", "coap-tcp", []),
                                    ("coaps+tcp TLS 1.3", "coap-tcp", ["-3"]),
                                    ("HTTPS TLS 1.2", "https", []), ("HTTPS TLS 1.3", "https", ["-3"])):
                k = "psk" if proto == "https" else "coap"
                runs = {"mefd": [], "bare": [], "durable": []}
                for _ in range(3):
                    runs["mefd"].append(run_bench(["-P", proto, "-p", m.ports[k], *v3, *grp()],
                                                  pids=[m.proc.pid]))
                    runs["bare"].append(run_bench(["-P", proto, "-p", bare[k][0], *v3, "-k", PSK],
                                                  pids=[bare[k][1]]))
                    runs["durable"].append(run_bench(["-P", proto, "-p", dport[k], *v3, "-k", PSK],
                                                     pids=[dur[k].pid]))
                r = {x: statistics.median(y["rate"] for y in v) for x, v in runs.items()}
                c = {x: statistics.median(y["cpu_us"] for y in v) for x, v in runs.items()}
                fail = sum(y["fail"] for v in runs.values() for y in v)
                rows.append(f"| {'PSK bootstrap ' + name:<32} | {r['mefd']:>7.0f} | {r['bare']:>7.0f} "
                            f"| {r['durable']:>9.0f} | {r['mefd'] / r['bare']:>9.2f} "
                            f"| {r['durable'] / r['bare']:>12.2f} | {r['mefd'] / r['durable']:>12.2f} "
                            f"| {c['mefd']:>4.0f} / {c['bare']:>3.0f} / {c['durable']:>3.0f} | {fail:>4.0f} |")
        finally:
            for pr in dur.values():
                pr.terminate()
                pr.wait(10)
            b.stop()
            m.stop()
    return "\n".join([
        "| scenario                         |  mefd/s |  bare/s | durable/s | mefd/bare | durable/bare "
        "| mefd/durable | cpu us m / b / d | fail |",
        "|----------------------------------|---------|---------|-----------|-----------|--------------"
        "|--------------|------------------|------|", *rows])


def main():
    args = sys.argv[1:]
    if "--durable-bare" in args:
        print(machine())
        print(durable_bare())
        return
    if "--metrics" in args:
        print(machine())
        print(with_metrics(args[args.index("--metrics") + 1]))
        return
    if "--compare" in args:
        print(machine())
        print(compare(args[args.index("--compare") + 1]))
        return
    if "--idle" in args:
        print(machine())
        print(idle(int(args[args.index("--idle") + 1])))
        return
    if "--scale" in args:
        print(machine())
        print(scale(int(os.environ.get("BENCH_CLIENTS", "100000")),
                    int(os.environ.get("BENCH_KE", "1000000"))))
        return
    only = args[args.index("--only") + 1] if "--only" in args else None
    rows_like = args[args.index("--rows") + 1].split(",") if "--rows" in args else None
    with workdir("mefd-bench.", "mefd") as t:
        m = mefd_up(t / "mefd", t / "pki")
        b = Bare(t / "pki")
        try:
            ctx = prepare_ctx(t / "pki", m)
            scen = scenarios(t / "pki", m, b, ctx)
            attach = None  # beside the measured runs only: perf record / stat, strace ...
            if "--perf" in args:
                attach = f"perf record -g -o {args[args.index('--perf') + 1]} -p {{pid}}"
            if "--attach" in args:
                attach = args[args.index("--attach") + 1]
            if attach:
                pids = {"pid": m.proc.pid, "bare_coap": b.procs[0].pid,
                        "bare_psk": b.procs[1].pid, "bare_cert": b.procs[2].pid}
                attach = subprocess.Popen(attach.format(**pids), shell=True,
                                          start_new_session=True)
                time.sleep(0.7)
            rows = measure(scen, only, rows_like, [m.proc.pid], [x.pid for x in b.procs],
                           bare_only=bool(only) and "--bare" in args)
            pki_line = None if only or rows_like else pki_setup(t / "pki")
            ca_line = None if only or rows_like else ca_cost(t / "pki")
            if attach:  # SIGINT to its whole group: perf writes its file or figures then
                os.killpg(attach.pid, signal.SIGINT)
                attach.wait(30)
        finally:
            b.stop()
            m.stop()
    print(machine())
    print(table(rows))
    if not only and not rows_like:
        ec = ecdsa_ceiling()
        est = next((r for r in rows if r["name"] == "EST simpleenroll HTTPS TLS 1.3 PSK"), None)
        https = next((r for r in rows if r["name"] == "PSK bootstrap HTTPS TLS 1.3"), None)
        if ec:
            print(f"ECDSA P-256 (openssl speed): sign {ec[0]:.0f}/s, verify {ec[1]:.0f}/s, "
                  f"sign+verify ceiling {ec[2]:.0f}/s")
        if pki_line:
            print(pki_line)
        if ca_line:
            print(ca_line)
        if ec and est and https and est["rate"] and https["rate"] > est["rate"]:
            beyond = 1 / (1 / est["rate"] - 1 / https["rate"])
            print(f"EST with TLS set aside: {beyond:.0f} enrolments/s = "
                  f"{beyond / ec[2]:.2f}x the sign+verify ceiling")
        BB.mkdir(exist_ok=True)
        (BB / "results.json").write_text(json.dumps({"machine": machine(), "rows": rows,
                                                     "ecdsa": ec}, indent=1))


if __name__ == "__main__":
    main()
