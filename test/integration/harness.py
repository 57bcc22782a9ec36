# SPDX-License-Identifier: BSD-2-Clause
"""Integration-test harness: a throw-away PKI made with the openssl CLI, a
mefd instance on free loopback ports, mefctl helpers, and wrappers around
the independent third-party clients (openssl s_client, gnutls-cli,
coap-client-openssl, curl). Every wait is bounded; nothing binds outside
127.0.0.1. MEFD_BUILD selects the build folder (default "build")."""

import os
import re
import select
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = (REPO / os.environ.get("MEFD_BUILD", "build")).resolve()
MEFD = BUILD / "mefd"
MEFCTL = BUILD / "mefctl"
FQDN = "mef.example.com"
HOST = "127.0.0.1"
# [limits] for load tests (storms, SIGKILL under load): the bench's own block
LIMITS_LIFTED = "\n" + (REPO / "bench" / "limits-lifted.conf").read_text()
BOOTSTRAP_LABEL = "EXPORTER-oneM2M-Bootstrap"


# ---------------------------------------------------------------- processes

def run(cmd, timeout=10, input=None, check=False, env=None):
    """Runs cmd (list) with a hard timeout; returns CompletedProcess (text)."""
    # bytes in, text out with replacement: clients may print raw server bytes
    data = input.encode() if isinstance(input, str) else input
    try:
        cp = subprocess.run([str(c) for c in cmd], input=data, capture_output=True,
                            timeout=timeout, env=env)
        cp.stdout = cp.stdout.decode(errors="replace")
        cp.stderr = cp.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        err = (e.stderr or b"").decode(errors="replace")
        cp = subprocess.CompletedProcess(cmd, -9, out, err + "\n[harness: timed out]")
    if check and cp.returncode != 0:
        raise AssertionError(f"{cmd} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
    return cp


def run_until(cmd, stdin_bytes, done, timeout, grace=0.0):
    """Starts cmd, writes stdin_bytes (stdin stays open so clients such as
    s_client do not hang up early), reads stdout until done(bytes) is true,
    the process exits, or timeout; then allows grace seconds for it to exit
    by itself (s_client flushes its session report only then) before killing.
    Returns (stdout, stderr, rc or None)."""
    p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()
    err = bytearray()
    try:
        if stdin_bytes:
            p.stdin.write(stdin_bytes)
            p.stdin.flush()
        deadline = time.monotonic() + timeout
        open_fds = {p.stdout.fileno(): out, p.stderr.fileno(): err}
        while open_fds and not done(bytes(out)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(open_fds), [], [], min(left, 0.2))
            for fd in ready:
                chunk = os.read(fd, 65536)
                if chunk:
                    open_fds[fd].extend(chunk)
                else:
                    del open_fds[fd]
    finally:
        for s in (p.stdin,):
            try:
                s.close()
            except OSError:
                pass
        if p.poll() is None and grace > 0:
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if p.poll() is None:
            p.kill()
        try:
            rest_out, rest_err = p.communicate(timeout=5)
            out.extend(rest_out or b"")
            err.extend(rest_err or b"")
        except (subprocess.TimeoutExpired, ValueError):
            pass
    return bytes(out), bytes(err), p.returncode


def free_port():
    """A port number free on 127.0.0.1 for both TCP and UDP (CoAP uses both)."""
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind((HOST, 0))
            port = t.getsockname()[1]
            u.bind((HOST, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def tcp_open(port, timeout=0.3):
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- PKI

def _ossl(*args, cwd=None):
    cp = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30, cwd=cwd)
    if cp.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {cp.stderr}")
    return cp.stdout


def _genkey(path):
    _ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    os.chmod(path, 0o600)


def _make_ca(d, name, cn):
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    _genkey(key)
    _ossl("req", "-x509", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-days", "3650",
          "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          "-addext", "subjectKeyIdentifier=hash", "-out", str(crt))
    return crt, key


_CA_CNF = """[ca]
default_ca = dflt
[dflt]
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
default_md = sha256
policy = pol
unique_subject = no
[pol]
commonName = supplied
"""


def _issue(d, name, ca, san, eku, startdate=None, enddate=None):
    """Issues a P-256 leaf for name signed by ca=(crt, key); with startdate /
    enddate (YYYYMMDDhhmmssZ) it goes through `openssl ca` to back-date."""
    key, csr, crt, ext = (d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt",
                          d / f"{name}.ext")
    _genkey(key)
    _ossl("req", "-new", "-key", str(key), "-subj", f"/CN={name}", "-out", str(csr))
    ext.write_text("[ext]\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n"
                   f"extendedKeyUsage={eku}\nsubjectAltName={san}\n"
                   "authorityKeyIdentifier=keyid\n")
    if startdate:
        cnf = d / "ca.cnf"
        cnf.write_text(_CA_CNF.format(d=d))
        (d / "index.txt").touch()
        if not (d / "serial").exists():
            (d / "serial").write_text("1000\n")
        _ossl("ca", "-batch", "-config", str(cnf), "-cert", str(ca[0]), "-keyfile", str(ca[1]),
              "-in", str(csr), "-out", str(crt), "-startdate", startdate, "-enddate", enddate,
              "-extfile", str(ext), "-extensions", "ext", "-notext")
    else:
        _ossl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
              "-CAcreateserial", "-days", "825", "-sha256", "-extfile", str(ext),
              "-extensions", "ext", "-out", str(crt))
    return crt, key


@dataclass
class Cert:
    crt: Path
    key: Path
    san: str = ""


@dataclass
class Pki:
    """Files for one test session: dev CA, MEF FQDN cert, client certs."""
    dir: Path
    ca: Cert = None
    mef: Cert = None
    clients: dict = field(default_factory=dict)   # name -> Cert (trusted CA)
    rogue_ca: Cert = None
    rogue: Cert = None                           # good SAN, untrusted CA
    expired: Cert = None

    @classmethod
    def create(cls, d):
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        p = cls(d)
        ca = _make_ca(d, "ca", "mefd test CA")
        p.ca = Cert(*ca)
        p.mef = Cert(*_issue(d, "mef", ca, f"DNS:{FQDN},DNS:localhost,IP:{HOST}", "serverAuth"),
                     FQDN)
        for name, san in (("cse1", "//example.net/cse1"), ("ae1", "//example.net/cse1/Cae1"),
                          ("cse2", "//example.net/cse2")):
            p.clients[name] = Cert(*_issue(d, name, ca, f"URI:{san}", "clientAuth"), san)
        rca = _make_ca(d, "rogue-ca", "rogue CA")
        p.rogue_ca = Cert(*rca)
        p.rogue = Cert(*_issue(d, "rogue", rca, "URI://example.net/cse1", "clientAuth"),
                       "//example.net/cse1")
        p.expired = Cert(*_issue(d, "expired", ca, "URI://example.net/expired", "clientAuth",
                                 "20200101000000Z", "20210101000000Z"), "//example.net/expired")
        return p


# ---------------------------------------------------------------- mefd

def write_kek(path):
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(path, 0o600)


def conf_text(d, pki, ports, level="info", extra=""):
    """A complete mefd config (decisions §6) for the files in pki and d.
    MEFD_STORE=postgresql: the store is a database of its own on one
    PostgreSQL server per session (pg_util.py, docs/scale-out.md)."""
    store = f"path = {d}/mefd.db\nkek_file = {d}/kek\n"
    if os.environ.get("MEFD_STORE") == "postgresql":
        import pg_util
        store = pg_util.session_server().store_section(d)
    return f"""# generated by test/integration/harness.py
[mef]
fqdn = {FQDN}
enrolment_expiry = 30d

[store]
{store}
[coap]
listen = {HOST}:{ports['coap']}

[https]
psk_listen = {HOST}:{ports['https_psk']}
cert_listen = {HOST}:{ports['https_cert']}

[tls]
certificate = {pki.mef.crt}
private_key = {pki.mef.key}
client_ca = {pki.ca.crt}

[ca]
certificate = {pki.ca.crt}
private_key = {pki.ca.key}

[log]
level = {level}
{extra}"""


class Mefd:
    """One mefd under test: its folder, config, ports, process and log."""

    def __init__(self, d, pki, level="info", extra=""):
        self.dir = Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.ports = {"coap": free_port(), "https_psk": free_port(), "https_cert": free_port()}
        self.conf = self.dir / "mefd.conf"
        self.db = self.dir / "mefd.db"
        self.logpath = self.dir / "mefd.log"
        self.proc = None
        self._logf = None
        write_kek(self.dir / "kek")
        self.write_conf(level=level, extra=extra)

    # -- config and mefctl
    def write_conf(self, level="info", extra="", text=None):
        self.conf.write_text(text if text is not None else
                             conf_text(self.dir, self.pki, self.ports, level, extra))

    def ctl(self, *args, check=True, timeout=10):
        return run([MEFCTL, "-c", self.conf, *args], timeout=timeout, check=check)

    def add_psk_client(self, cid, identity, key_hex, **kw):
        return self.ctl("client", "add", cid, "--psk-identity", identity, "--psk-hex", key_hex, **kw)

    def add_cert_client(self, cid, san, **kw):
        return self.ctl("client", "add", cid, "--cert-san", san, **kw)

    def set_targets(self, cid, *targets, **kw):
        args = []
        for t in targets:
            args += ["--target", t]
        return self.ctl("client", "set", cid, *args, **kw)

    def remove_client(self, cid, **kw):
        return self.ctl("client", "remove", cid, **kw)

    # -- process
    def start(self, wait=10.0):
        self._logf = open(self.logpath, "ab")
        # MEFD_WRAPPER (make valgrind) runs mefd under a tool; it keeps mefd's pid
        wrapper = shlex.split(os.environ.get("MEFD_WRAPPER", ""))
        wait = wait * float(os.environ.get("MEFD_SLOWDOWN", "1"))
        self.proc = subprocess.Popen([*wrapper, str(MEFD), "-c", str(self.conf), "--foreground"],
                                     stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=self._logf, cwd=self.dir)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mefd exited {self.proc.returncode} at start:\n{self.log()}")
            if all(tcp_open(self.ports[k]) for k in ("https_psk", "https_cert", "coap")):
                return self
            time.sleep(0.05)
        self.stop(expect_rc=None)
        raise AssertionError(f"mefd did not open its ports within {wait}s:\n{self.log()}")

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, expect_rc=0, timeout=10):
        """SIGTERM and wait; returns the exit code (asserts expect_rc unless None)."""
        timeout = timeout * float(os.environ.get("MEFD_SLOWDOWN", "1"))
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait(timeout=5)
                raise AssertionError(f"mefd ignored SIGTERM for {timeout}s:\n{self.log()}")
        self.proc = None
        if self._logf:
            self._logf.close()
            self._logf = None
        if expect_rc is not None:
            assert rc == expect_rc, f"mefd exited {rc}:\n{self.log()}"
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.logpath.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=5.0, start=0):
        """Waits until regex pattern appears in the log after offset start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log()[start:])
            if m:
                return m
            time.sleep(0.05)
        return None

    def cpu_ticks(self):
        """utime + stime of mefd in clock ticks, from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])


# ---------------------------------------------------------------- openssl s_client

@dataclass
class TlsResult:
    ok: bool
    protocol: str = ""
    cipher: str = ""
    keymat: str = ""
    out: str = ""
    err: str = ""
    rc: int = None
    data: bytes = b""


def _s_client_args(port, proto, psk_identity=None, psk=None, cert=None, key=None, cafile=None,
                   cipher=None, ciphersuites=None, keymatexport=None, servername=FQDN):
    # -state: the handshake succeeded only if the server's Finished was read
    a = ["openssl", "s_client", f"-{proto}", "-state", "-connect", f"{HOST}:{port}"]
    if servername:
        a += ["-servername", servername]
    if psk is not None:
        a += ["-psk_identity", psk_identity, "-psk", psk]
    if cert:
        a += ["-cert", cert, "-key", key]
    if cafile:
        a += ["-CAfile", cafile, "-verify_return_error"]
    if cipher:
        a += ["-cipher", cipher]
    if ciphersuites:
        a += ["-ciphersuites", ciphersuites]
    if keymatexport:
        a += ["-keymatexport", keymatexport, "-keymatexportlen", "48"]
    return a


def _parse_s_client(out, err, rc):
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M)
    ciph = re.search(r"^\s*Cipher\s*:\s*(\S+)", out, re.M)
    km = re.search(r"Keying material:\s*([0-9A-Fa-f]+)", out)
    new = re.search(r"^(?:New|Reused), (\S+), Cipher is (\S+)", out, re.M)
    cipher = ciph.group(1) if ciph else (new.group(2) if new else "")
    # TLS 1.3 without a session ticket prints no SSL-Session block
    protocol = proto.group(1) if proto else (new.group(1) if new else "")
    ok = (bool(cipher) and cipher not in ("0000", "(NONE)") and "Cipher is (NONE)" not in out
          and "SSL_connect:SSLv3/TLS read finished" in err)
    return TlsResult(ok=ok, protocol=protocol, cipher=cipher,
                     keymat=km.group(1).upper() if km else "", out=out, err=err, rc=rc)


def s_client(port, proto="tls1_2", timeout=5, **kw):
    """One handshake, then close. proto: tls1_2, tls1_3, dtls1_2, tls1_1."""
    a = _s_client_args(port, proto, **kw)
    cp = run(a, timeout=timeout, input="")
    return _parse_s_client(cp.stdout, cp.stderr, cp.returncode)


def s_client_quiet(port, proto, payload, done, timeout=5, **kw):
    """Raw application bytes over one s_client connection (-quiet): returns
    the bytes the server sent back (read until done(bytes) or timeout)."""
    a = _s_client_args(port, proto, **kw) + ["-quiet"]
    out, err, rc = run_until(a, payload, done, timeout)
    return TlsResult(ok=done(out), out="", err=err.decode(errors="replace"), rc=rc, data=out)


# ---------------------------------------------------------------- HTTP

@dataclass
class HttpResponse:
    status: int = 0
    headers: dict = field(default_factory=dict)   # lower-case names
    body: bytes = b""
    tls: TlsResult = None

    @property
    def rsc(self):
        v = self.headers.get("x-m2m-rsc")
        return int(v) if v and v.isdigit() else None


def parse_http(raw):
    """Parses the first HTTP/1.x response in raw; None if incomplete."""
    i = raw.find(b"HTTP/1.")
    if i < 0:
        return None
    head_end = raw.find(b"\r\n\r\n", i)
    if head_end < 0:
        return None
    lines = raw[i:head_end].decode("latin-1").split("\r\n")
    r = HttpResponse(status=int(lines[0].split()[1]))
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        r.headers[k.strip().lower()] = v.strip()
    body = raw[head_end + 4:]
    n = r.headers.get("content-length")
    if n is not None:
        if len(body) < int(n):
            return None
        body = body[:int(n)]
    r.body = body
    return r


def http_request(method="GET", path="/mef", headers=None, body=b""):
    h = {"Host": FQDN, "Accept": "application/json", "X-M2M-RI": "rq-1",
         "Connection": "close"}
    h.update(headers or {})
    if body or method in ("POST", "PUT"):
        h["Content-Length"] = str(len(body))
    txt = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
    return txt.encode() + b"\r\n" + body


def https_s_client(port, method="GET", path="/mef", headers=None, body=b"", proto="tls1_2",
                   timeout=6, **kw):
    """One HTTPS request over openssl s_client (PSK or certificates, any
    forced suite); returns HttpResponse (status 0 if none) with .tls set."""
    a = _s_client_args(port, proto, **kw) + ["-ign_eof"]
    req = http_request(method, path, headers, body)
    out, err, rc = run_until(a, req, lambda b: parse_http(b) is not None, timeout, grace=3)
    tls = _parse_s_client(out.decode("latin-1"), err.decode(errors="replace"), rc)
    r = parse_http(out) or HttpResponse()
    r.tls = tls
    return r


def curl(port, path="/mef", method="GET", cert=None, key=None, cafile=None, headers=None,
         body=None, timeout=6, extra=()):
    """HTTPS with curl against the certificate listener; HttpResponse (status 0 on failure)."""
    a = ["curl", "-sS", "-i", "-X", method, "--max-time", str(timeout),
         "--resolve", f"{FQDN}:{port}:{HOST}", "-H", "X-M2M-RI: rq-curl",
         "-H", "Accept: application/json"]
    if cafile:
        a += ["--cacert", cafile]
    if cert:
        a += ["--cert", cert, "--key", key]
    for k, v in (headers or {}).items():
        a += ["-H", f"{k}: {v}"]
    if body is not None:
        a += ["--data-binary", "@-"]
    a += [*extra, f"https://{FQDN}:{port}{path}"]
    try:
        cp = subprocess.run([str(x) for x in a], input=body if body is not None else b"",
                            capture_output=True, timeout=timeout + 3)
    except subprocess.TimeoutExpired:
        return HttpResponse()
    r = parse_http(cp.stdout)
    if r is None:
        r = HttpResponse()
    r.tls = TlsResult(ok=cp.returncode == 0, rc=cp.returncode,
                      err=cp.stderr.decode(errors="replace"))
    return r


# ---------------------------------------------------------------- gnutls-cli

def gnutls_cli(port, priority=None, psk_user=None, psk_hex=None, cert=None, key=None,
               cafile=None, udp=False, keymatexport=None, timeout=5):
    a = ["gnutls-cli", "-p", str(port), HOST]
    if udp:
        a.append("--udp")
    if priority:
        a += ["--priority", priority]
    if psk_user is not None:
        a += ["--pskusername", psk_user, "--pskkey", psk_hex]
    if cert:
        a += ["--x509certfile", cert, "--x509keyfile", key]
    if cafile:
        a += ["--x509cafile", cafile]
    elif psk_user is None:
        a.append("--insecure")
    if keymatexport:
        a += ["--keymatexport", keymatexport, "--keymatexportsize", "48"]
    cp = run(a, timeout=timeout, input="")
    out = cp.stdout + cp.stderr
    desc = re.search(r"- Description: (\S+)", out)
    km = re.search(r"- Key material: ([0-9a-fA-F]+)", out)
    return TlsResult(ok="Handshake was completed" in out, protocol=desc.group(1) if desc else "",
                     keymat=km.group(1).upper() if km else "", out=cp.stdout, err=cp.stderr,
                     rc=cp.returncode)


# ---------------------------------------------------------------- CoAP

OPT_URI_PATH = 11
OPT_CONTENT_FORMAT = 12
OPT_ACCEPT = 17
OPT_M2M_FR, OPT_M2M_RQI, OPT_M2M_RSC = 279, 283, 307


def _opt_bytes(options):
    out = bytearray()
    last = 0
    for num, val in sorted(options, key=lambda o: o[0]):
        delta, ln = num - last, len(val)
        last = num

        def nib(x):
            if x < 13:
                return x, b""
            if x < 269:
                return 13, bytes([x - 13])
            return 14, (x - 269).to_bytes(2, "big")
        dn, dx = nib(delta)
        ln_n, lx = nib(ln)
        out += bytes([dn << 4 | ln_n]) + dx + lx + val
    return bytes(out)


def _opts_parse(b):
    opts, last, i = [], 0, 0
    while i < len(b) and b[i] != 0xFF:
        dn, ln = b[i] >> 4, b[i] & 15
        i += 1

        def ext(x, i):
            if x == 13:
                return b[i] + 13, i + 1
            if x == 14:
                return int.from_bytes(b[i:i + 2], "big") + 269, i + 2
            return x, i
        dn, i = ext(dn, i)
        ln, i = ext(ln, i)
        last += dn
        opts.append((last, bytes(b[i:i + ln])))
        i += ln
    payload = bytes(b[i + 1:]) if i < len(b) else b""
    return opts, payload


def coap_path_opts(path):
    return [(OPT_URI_PATH, s.encode()) for s in path.strip("/").split("/") if s]


def coap_code(s):
    c, d = s.split(".")
    return int(c) << 5 | int(d)


def code_str(c):
    return f"{c >> 5}.{c & 31:02d}"


@dataclass
class CoapResponse:
    code: str = ""
    options: list = field(default_factory=list)
    payload: bytes = b""

    def opt(self, num):
        for n, v in self.options:
            if n == num:
                return v
        return None

    @property
    def rsc(self):
        v = self.opt(OPT_M2M_RSC)
        return int.from_bytes(v, "big") if v is not None else None


def coap_udp_encode(code, path, token=b"\x42", mid=0x1234, options=(), payload=b""):
    opts = coap_path_opts(path) + list(options)
    hdr = bytes([0x40 | len(token), coap_code(code)]) + mid.to_bytes(2, "big") + token
    return hdr + _opt_bytes(opts) + (b"\xff" + payload if payload else b"")


def coap_udp_decode(b):
    if len(b) < 4:
        return None
    tkl = b[0] & 15
    opts, payload = _opts_parse(b[4 + tkl:])
    return CoapResponse(code_str(b[1]), opts, payload)


def coap_tcp_encode(code, path, token=b"\x42", options=(), payload=b""):
    body = _opt_bytes(coap_path_opts(path) + list(options)) + (b"\xff" + payload if payload else b"")
    n = len(body)
    if n < 13:
        first, ext = n << 4, b""
    elif n < 269:
        first, ext = 13 << 4, bytes([n - 13])
    else:
        first, ext = 14 << 4, (n - 269).to_bytes(2, "big")
    return bytes([first | len(token)]) + ext + bytes([coap_code(code)]) + token + body


def coap_tcp_frames(b):
    """Splits a CoAP-over-TCP byte stream (RFC 8323) into complete messages."""
    msgs, i = [], 0
    while i < len(b):
        ln, tkl = b[i] >> 4, b[i] & 15
        j = i + 1
        if ln == 13:
            if j >= len(b):
                break
            ln, j = b[j] + 13, j + 1
        elif ln == 14:
            if j + 2 > len(b):
                break
            ln, j = int.from_bytes(b[j:j + 2], "big") + 269, j + 2
        elif ln == 15:
            if j + 4 > len(b):
                break
            ln, j = int.from_bytes(b[j:j + 4], "big") + 65805, j + 4
        end = j + 1 + tkl + ln
        if end > len(b):
            break
        opts, payload = _opts_parse(b[j + 1 + tkl:end])
        msgs.append(CoapResponse(code_str(b[j]), opts, payload))
        i = end
    return msgs


CSM = bytes([0x00, 0xE1])  # RFC 8323 CSM, no options, empty token


def _tcp_response(b):
    for m in coap_tcp_frames(b):
        if not m.code.startswith("7."):
            return m
    return None


def coap_s_client(port, path="/mef", code="0.01", proto="dtls1_2", options=(), payload=b"",
                  timeout=5, **kw):
    """One CoAP request over openssl s_client with a forced suite: CoAP over
    DTLS (proto dtls1_2) or RFC 8323 CoAP over TLS (tls1_2 / tls1_3).
    Returns CoapResponse or None."""
    if proto.startswith("dtls"):
        msg = coap_udp_encode(code, path, options=options, payload=payload)
        r = s_client_quiet(port, proto, msg, lambda b: len(b) >= 4, timeout=timeout, **kw)
        return coap_udp_decode(r.data) if len(r.data) >= 4 else None
    msg = CSM + coap_tcp_encode(code, path, options=options, payload=payload)
    r = s_client_quiet(port, proto, msg, lambda b: _tcp_response(b) is not None,
                       timeout=timeout, **kw)
    return _tcp_response(r.data)


@dataclass
class CoapClientResult:
    code: str = ""
    payload: bytes = b""
    out: str = ""
    err: str = ""
    dropped: bool = False   # coap-client refused the response (unknown critical option)


def coap_client(uri, method="get", psk_user=None, psk_ascii=None, cert=None, key=None,
                cafile=None, options=(), payload=None, timeout=5, tmpdir="/tmp"):
    """coap-client-openssl; the response code is parsed from its -v 7 PDU
    dump (its exit status is 0 even on failure)."""
    outfile = Path(tmpdir) / f"coap-out-{os.getpid()}-{time.monotonic_ns()}"
    a = ["coap-client-openssl", "-m", method, "-B", str(max(1, timeout - 1)), "-v", "7",
         "-o", outfile]
    if psk_user is not None:
        a += ["-u", psk_user, "-k", psk_ascii]
    if cert:
        a += ["-c", cert, "-j", key]
    if cafile:
        a += ["-C", cafile]
    for num, val in options:
        a += ["-O", f"{num},{val}"]
    if payload is not None:
        a += ["-e", payload]
    a.append(uri)
    cp = run(a, timeout=timeout + 2)
    dump = cp.stdout + "\n" + cp.stderr
    codes = re.findall(r"^v:\S+ (?:t:\S+ )?c:([245]\.\d\d) ", dump, re.M)
    data = b""
    if outfile.exists():
        data = outfile.read_bytes()
        outfile.unlink()
    return CoapClientResult(code=codes[-1] if codes else "", payload=data, out=cp.stdout,
                            err=cp.stderr, dropped="unknown critical option" in dump)
