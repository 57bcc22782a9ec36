# SPDX-License-Identifier: BSD-2-Clause
"""Group commit keeps durability exact (docs/performance.md): under a
bootstrap storm on DTLS, coaps+tcp and HTTPS (TLS 1.3, where answers are
held for the commit), mefd is killed with SIGKILL; every KeID for which a
client got its 2.xx answer must be in the database. The KeIDs come from the
load generator's own OpenSSL exporter (hex(EKM[0..15]), TS-0003 10.3.4) and
the database is read with Python's sqlite3, so neither side is mefd's code."""

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

import harness

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "build-bench" / "bench"
SECRET = "6b6562617463682d64757261626c652d7465737421"
LIMITS = """
[limits]
handshake_rate = 6000000
handshake_burst = 1000000
request_rate = 6000000
request_burst = 1000000
addr_factor = 10000
"""


@pytest.fixture(scope="module")
def bench():
    cp = subprocess.run(["make", "-s", "-f", "bench/bench.mk", "build-bench/bench"], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
    if cp.returncode != 0 or not BENCH.exists():
        pytest.skip(f"cannot build the load generator: {cp.stderr[-300:]}")
    return BENCH


@pytest.mark.skipif(os.environ.get("MEFD_STORE") == "postgresql",
                    reason="reads the SQLite file; test_pg.py has the PostgreSQL SIGKILL storm")
def test_answered_ke_survive_sigkill(mefctl, pki, tmp_path, bench):
    m = harness.Mefd(tmp_path / "m", pki, extra=LIMITS)
    m.start()
    m.ctl("group", "add", "storm", "--pattern", "*@storm.example.com", "--secret-hex", SECRET)
    keids = tmp_path / "answered.txt"
    runs = []
    try:
        for base, (proto, port, extra) in enumerate((("dtls", m.ports["coap"], []),
                                                     ("coap-tcp", m.ports["coap"], ["-3"]),
                                                     ("https", m.ports["https_psk"], ["-3"]))):
            runs.append(subprocess.Popen(
                [str(bench), "-P", proto, "-p", str(port), *extra, "-g", SECRET,
                 "-i", "s%lu@storm.example.com", "-r", "1000000", "-b", str(base * 1000000),
                 "-c", "6", "-t", "20", "-E", str(keids)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for a few hundred answers
            if keids.exists() and len(keids.read_text().splitlines()) >= 300:
                break
            time.sleep(0.1)
        os.kill(m.pid, signal.SIGKILL)
        m.proc.wait(timeout=10)
    finally:
        for r in runs:
            r.terminate()
            r.wait(timeout=10)
        m.stop(expect_rc=None)
    answered = set(keids.read_text().split())
    assert len(answered) >= 100, "too few bootstraps answered before the kill"
    db = sqlite3.connect(str(m.db))
    stored = {row[0] for row in db.execute("SELECT keid FROM ke")}
    db.close()
    missing = answered - stored
    assert not missing, f"{len(missing)} answered KeIDs not on disk, e.g. {sorted(missing)[:3]}"
