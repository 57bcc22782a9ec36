# SPDX-License-Identifier: BSD-2-Clause
"""Helpers of the Remote Security Provisioning integration tests.

The oracle side lives here: the TS-0003 10.3 derivations recomputed with
Python's hmac, and CoAP requests through coap-client-openssl and openssl
s_client (the TLS clients that print their own RFC 5705 keying material are
wrapped by harness.py). Nothing here asks mefd how it computed a key: the tests compare what
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

import harness

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


# --- requests ----------------------------------------------------------------

def _run(argv, stdin=b"", timeout=TIMEOUT):
    try:
        p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode("utf-8", "replace") if e.stdout else ""
        return -1, out + "\n[timeout]"


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
LIMITS = harness.LIMITS_LIFTED + "handshake_timeout = 3\n"


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
