# SPDX-License-Identifier: BSD-2-Clause
"""Helpers of the Remote Security Provisioning integration tests.

The oracle side lives here: the TLS clients (openssl s_client, gnutls-cli,
coap-client-openssl, curl) that talk to mefd and print their own RFC 5705
keying material, and the TS-0003 10.3 derivations recomputed with Python's
hmac. Nothing here asks mefd how it computed a key: the tests compare what
mefd stores or answers with what these independent tools say.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time
import unicodedata

LABEL = "EXPORTER-oneM2M-Bootstrap"
EKM_LEN = 48

# Labels of TS-0003 10.3.2, 10.3.3 and 10.3.7, as bytes.
LBL_KM = b"oneM2M Enrolment Key to Master Credential derivation"
LBL_KPSA = b"oneM2M Enrolment Key to Provisioned Secure Connection Key derivation"
LBL_UC = b"oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation"

TIMEOUT = 15

# --- derivations (decisions §1) -------------------------------------------


def keid_of(ekm, fqdn):
    """decisions §1.2: UPPERCASE-hex(EKM[0..15]) "@" lowercase(fqdn)."""
    return ekm[:16].hex().upper() + "@" + fqdn.lower()


def ke_of(ekm):
    return ekm[16:48]


def _nfkc(s):
    return unicodedata.normalize("NFKC", s).encode("utf-8")


def usage_constrained(ke, suid, target_id):
    """10.3.7 with decisions §1.5: SUID as decimal ASCII, target NFKC UTF-8."""
    msg = LBL_UC + str(int(suid)).encode("ascii") + _nfkc(target_id)
    return hmac.new(ke, msg, hashlib.sha256).digest()


def km(ke, maf_id):
    return hmac.new(ke, LBL_KM + _nfkc(maf_id), hashlib.sha256).digest()


def kpsa(ke, enrolee_b_id):
    return hmac.new(ke, LBL_KPSA + _nfkc(enrolee_b_id), hashlib.sha256).digest()


def group_kpm(secret, kpm_id):
    """Enrolment groups: Kpm = HMAC-SHA-256(group secret, KpmID bytes)."""
    return hmac.new(secret, kpm_id.encode("utf-8"), hashlib.sha256).digest()


def utc_stamp(t):
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t))


def parse_stamp(s):
    """YYYYMMDDThhmmss (UTC) -> unix seconds."""
    import calendar
    return calendar.timegm(time.strptime(s, "%Y%m%dT%H%M%S"))


# --- the TLS oracles --------------------------------------------------------

_SCLIENT_EKM = re.compile(r"Keying material:\s*([0-9A-Fa-f]+)")
_GNUTLS_EKM = re.compile(r"- Key material:\s*([0-9A-Fa-f]+)")


class Handshake:
    """What a client printed: the keying material (None if the handshake failed)."""

    def __init__(self, ekm, out, rc):
        self.ekm = ekm
        self.out = out
        self.rc = rc

    @property
    def ok(self):
        return self.ekm is not None and len(self.ekm) == EKM_LEN

    def __repr__(self):
        return "Handshake(ok=%s, rc=%s)\n%s" % (self.ok, self.rc, self.out[-3000:])


def _run(argv, stdin=b"", timeout=TIMEOUT):
    try:
        p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode("utf-8", "replace") if e.stdout else ""
        return -1, out + "\n[timeout]"


def s_client(host, port, *, dtls=False, tls13=False, psk_identity=None, psk_hex=None,
             cert=None, key=None, cafile=None, cipher=None, servername=None,
             stdin=b"", quiet=False, timeout=TIMEOUT):
    """openssl s_client with -keymatexport; returns (Handshake, argv)."""
    argv = ["openssl", "s_client", "-connect", "%s:%d" % (host, port)]
    if dtls:
        argv += ["-dtls1_2"]
    elif tls13:
        argv += ["-tls1_3"]
    else:
        argv += ["-tls1_2"]
    if psk_identity is not None:
        argv += ["-psk_identity", psk_identity, "-psk", psk_hex]
    if cert:
        argv += ["-cert", cert, "-key", key]
    if cafile:
        argv += ["-CAfile", cafile]
    if cipher:
        argv += ["-ciphersuites" if tls13 else "-cipher", cipher]
    if servername:
        argv += ["-servername", servername]
    if quiet:
        argv += ["-quiet"]
    argv += ["-keymatexport", LABEL, "-keymatexportlen", str(EKM_LEN)]
    rc, out = _run(argv, stdin, timeout)
    m = _SCLIENT_EKM.search(out)
    ekm = bytes.fromhex(m.group(1)) if m else None
    return Handshake(ekm, out, rc)


def gnutls_cli(host, port, *, priority, psk_identity=None, psk_hex=None, cert=None,
               key=None, cafile=None, timeout=TIMEOUT):
    """gnutls-cli --keymatexport; returns a Handshake."""
    argv = ["gnutls-cli", "-p", str(port), host, "--priority", priority,
            "--keymatexport", LABEL, "--keymatexportsize", str(EKM_LEN)]
    if psk_identity is not None:
        argv += ["--pskusername", psk_identity, "--pskkey", psk_hex]
    if cert:
        argv += ["--x509certfile", cert, "--x509keyfile", key]
    if cafile:
        argv += ["--x509cafile", cafile]
    else:
        argv += ["--insecure"]
    rc, out = _run(argv, b"", timeout)
    m = _GNUTLS_EKM.search(out)
    ekm = bytes.fromhex(m.group(1)) if m else None
    return Handshake(ekm, out, rc)


# --- requests over HTTPS ----------------------------------------------------


class Resp:
    """A transport-neutral response: status (HTTP status or CoAP code like 205), rsc, body."""

    def __init__(self, status, rsc, body, raw=""):
        self.status = status
        self.rsc = rsc
        self.body = body
        self.raw = raw

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Resp(status=%r, rsc=%r, body=%r)\n%s" % (self.status, self.rsc, self.body,
                                                         self.raw[-3000:])


def _http_request_bytes(path, host, origin, rqi="rq-1"):
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host, "Accept: application/json",
             "X-M2M-RI: %s" % rqi, "Connection: close"]
    if origin is not None:
        lines.append("X-M2M-Origin: %s" % origin)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_http(raw):
    """Parses a raw HTTP/1.1 response text (possibly chunked) into a Resp."""
    i = raw.find("HTTP/1.")
    if i < 0:
        return Resp(None, None, None, raw)
    head, _, body = raw[i:].partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        out, rest = "", body
        while rest:
            size_s, _, rest = rest.partition("\r\n")
            size = int(size_s.split(";")[0] or "0", 16)
            if size == 0:
                break
            out += rest[:size]
            rest = rest[size + 2:]
        body = out
    rsc = hdrs.get("x-m2m-rsc")
    r = Resp(status, int(rsc) if rsc else None, body, raw)
    r.headers = hdrs
    return r


def https_psk_get(host, port, path, *, psk_identity, psk_hex, origin=None, tls13=False,
                  vhost="localhost", cipher=None):
    """A raw GET over the TLS-PSK listener with openssl s_client."""
    argv = ["openssl", "s_client", "-connect", "%s:%d" % (host, port), "-quiet",
            "-tls1_3" if tls13 else "-tls1_2", "-psk_identity", psk_identity, "-psk", psk_hex]
    if cipher:
        argv += ["-ciphersuites" if tls13 else "-cipher", cipher]
    rc, out = _run(argv, _http_request_bytes(path, vhost, origin))
    return parse_http(out)


def https_cert_get(host, port, path, *, cert, key, cafile, origin=None, tls13=False,
                   servername=None):
    """A GET over the certificate listener with curl."""
    name = servername or "localhost"
    argv = ["curl", "-s", "-i", "--max-time", str(TIMEOUT), "--cacert", cafile,
            "--cert", cert, "--key", key, "-H", "X-M2M-RI: rq-1",
            "--resolve", "%s:%d:%s" % (name, port, host),
            "--tlsv1.3" if tls13 else "--tlsv1.2"]
    if not tls13:
        argv += ["--tls-max", "1.2"]
    if origin is not None:
        argv += ["-H", "X-M2M-Origin: %s" % origin]
    argv += ["https://%s:%d%s" % (name, port, path)]
    rc, out = _run(argv)
    return parse_http(out)


# --- requests over CoAP -----------------------------------------------------

_COAP_CODE = re.compile(r"\bc:(\d)\.(\d\d)\b")
# libcoap prints an option it has no name for as NUMBER:value, bytes as \xNN.
_COAP_RSC = re.compile(r"\b307:((?:\\x[0-9A-Fa-f]{2}|[^,\]\s\\])*)")


def coap_get(uri, *, psk_identity=None, psk_ascii=None, cert=None, key=None, cafile=None,
             origin=None, timeout=TIMEOUT):
    """GET with coap-client-openssl; reads the code and the oneM2M-RSC option from -v 7.

    uri is coaps://HOST:PORT/path or coaps+tcp://HOST:PORT/path. coap-client
    logs mefd's response but then rejects it for the unknown critical option
    307 and waits for -B: hence the short -B (the answer comes well before).
    """
    import tempfile
    fd, outfile = tempfile.mkstemp(prefix="coap-")
    os.close(fd)
    argv = ["coap-client-openssl", "-v", "7", "-B", "2", "-m", "get",
            "-o", outfile, "-O", "283,rq-1"]
    if origin is not None:
        argv += ["-O", "279,%s" % origin]
    if psk_identity is not None:
        argv += ["-u", psk_identity, "-k", psk_ascii]
    if cert:
        argv += ["-c", cert, "-j", key]
        if cafile:
            argv += ["-C", cafile]
    argv += [uri]
    try:
        rc, out = _run(argv, b"", timeout)
        with open(outfile, "rb") as f:
            payload = f.read().decode("utf-8", "replace")
    finally:
        os.unlink(outfile)
    r = parse_coap(out)
    if payload:
        r.body = payload
    return r


def parse_coap(out):
    """Finds the last response PDU coap-client logged and its payload."""
    code, rsc, body = None, None, None
    for ln in out.splitlines():
        if not ln.startswith("v:1"):
            continue
        m = _COAP_CODE.search(ln)
        if not m or m.group(1) == "0":
            continue        # a request (GET, CSM) or an empty message
        code = int(m.group(1)) * 100 + int(m.group(2))
        m2 = _COAP_RSC.search(ln)
        rsc = _coap_uint(m2.group(1)) if m2 else None
        p = ln.find(" :: ")
        body = ln[p + 4:].strip() if p >= 0 else ""
        if body.startswith("'") and body.endswith("'"):
            body = body[1:-1]
    return Resp(code, rsc, body, out)


def _coap_uint(s):
    """A uint option value as libcoap printed it (\\xNN escapes or plain chars)."""
    raw = bytearray()
    i = 0
    while i < len(s):
        if s.startswith("\\x", i):
            raw.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            raw += s[i].encode("latin-1")
            i += 1
    return int.from_bytes(bytes(raw), "big")


# --- mefctl ke list ---------------------------------------------------------


def ke_list(d, client=None, secrets=False):
    """`mefctl ke list --json` of harness.Mefd d, parsed."""
    args = ["ke", "list", "--json"]
    if client:
        args += ["--client", client]
    if secrets:
        args += ["--show-secrets"]
    cp = d.ctl(*args)
    return json.loads(cp.stdout)


def keids(d):
    return {k["keID"] for k in ke_list(d)}


def new_kes(d, before, secrets=True, client=None):
    """Ke objects listed now whose keID was not in the set before."""
    return [k for k in ke_list(d, client, secrets) if k["keID"] not in before]


def wait_new_kes(d, before, n=1, secrets=True, client=None, deadline=3.0):
    """Polls briefly: the Ke is stored at handshake end, the client may exit first."""
    end = time.time() + deadline
    while True:
        got = new_kes(d, before, secrets, client)
        if len(got) >= n or time.time() > end:
            return got
        time.sleep(0.1)


def log_mark(d):
    return len(d.log())


def log_since(d, mark):
    return d.log()[mark:]


def b64(b):
    return base64.b64encode(b).decode()


def rand_hex(n=16):
    return os.urandom(n).hex()


def ascii_psk():
    """A PSK that coap-client's -k (raw ASCII) can pass: returns (ascii, hex)."""
    s = "k-" + os.urandom(12).hex()
    return s, s.encode().hex()


# --- client certificates ------------------------------------------------------


def make_client_cert(ca_cert, ca_key, outdir, name, san, days=2):
    """A P-256 client certificate (EKU clientAuth) with subjectAltName san
    ("URI:..." or "DNS:..."), signed by the CA; returns (cert_path, key_path)."""
    key = os.path.join(outdir, name + ".key")
    csr = os.path.join(outdir, name + ".csr")
    crt = os.path.join(outdir, name + ".pem")
    ext = os.path.join(outdir, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n"
                "subjectAltName=%s\n" % san)
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=%s" % name,
                    "-out", csr], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", str(days), "-sha256", "-extfile", ext,
                    "-out", crt], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return crt, key


def coap_raw_get(port, path, proto, origin=None, timeout=6, **cred):
    """GET over harness.coap_s_client (a CoAP message written by hand through
    openssl s_client): it returns as soon as the response is in, where
    coap-client-openssl waits for its -B timeout, because it rejects
    responses that carry the (odd, hence critical) oneM2M-RSC option 307.
    proto: dtls1_2 (CoAP over DTLS) or tls1_2 / tls1_3 (RFC 8323)."""
    import harness
    p, _, query = path.partition("?")
    opts = [(harness.OPT_M2M_RQI, b"rq-1")]
    if query:
        opts += [(15, q.encode()) for q in query.split("&")]
    if origin is not None:
        opts.append((harness.OPT_M2M_FR, origin.encode()))
    r = harness.coap_s_client(port, p, proto=proto, options=opts, timeout=timeout, **cred)
    if r is None:
        return Resp(None, None, None, "no CoAP response")
    c, _, dd = r.code.partition(".")
    out = Resp(int(c) * 100 + int(dd), r.rsc, r.payload.decode("utf-8", "replace"), repr(r))
    out.rqi = r.opt(harness.OPT_M2M_RQI)
    return out


# --- the daemon these tests share ----------------------------------------------

# Every request of these tests is a fresh handshake from a few identities:
# lift the per-identity rate limits ([limits], docs/config.md).
LIMITS = """
[limits]
handshake_rate = 600000
handshake_burst = 100000
request_rate = 600000
request_burst = 100000
"""


def _mefd_fixture():
    import pytest

    @pytest.fixture(scope="module")
    def mefd(mefctl, pki, tmp_path_factory):
        """conftest's shared mefd (same standard enrolees) without rate limits."""
        import harness
        from conftest import Enrolees
        d = harness.Mefd(tmp_path_factory.mktemp("rspf"), pki, extra=LIMITS)
        d.start()
        d.enrolees = Enrolees(d, pki)
        yield d
        d.stop(expect_rc=0)
    return mefd


mefd = _mefd_fixture()
