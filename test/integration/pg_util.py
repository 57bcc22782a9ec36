# SPDX-License-Identifier: BSD-2-Clause
"""A throw-away PostgreSQL server for the integration tests, from Debian's
postgresql-15 packages: initdb into a temporary folder, password (SCRAM)
authentication, TCP on 127.0.0.1 at a free port and the unix socket inside
the folder. PostgreSQL refuses to run as root, so as root the server runs as
the `postgres` system user (runuser). Used by test_pg.py and, with
MEFD_STORE=postgresql, by harness.py for the whole suite."""

import atexit
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("MEFD_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "mefd"


def missing():
    """Why no server can be started here, or None."""
    for b in ("initdb", "pg_ctl", "postgres", "psql"):
        if not os.access(PG_BIN / b, os.X_OK):
            return f"{PG_BIN / b} missing (apt-get install postgresql-15)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root and runuser is missing"
    return None


def _as_owner(cmd):
    if os.geteuid() != 0:
        return [str(c) for c in cmd]
    return ["runuser", "-u", "postgres", "--", *[str(c) for c in cmd]]


class PgServer:
    def __init__(self):
        from harness import free_port  # late: harness imports this module
        self.dir = Path(tempfile.mkdtemp(prefix="mefd-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.dbs = set()
        self.started = False

    def start(self):
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for p in (self.dir, pwfile):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        self._run([PG_BIN / "initdb", "-D", self.data, "-U", USER, "--pwfile", pwfile,
                   "-A", "scram-sha-256", "--locale=C", "-E", "UTF8", "--no-sync"], 60)
        pwfile.unlink()
        self.opts = opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.dir} -c max_connections=200 "
                "-c fsync=on -c synchronous_commit=on")
        self._run([PG_BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "pg.log", "-w",
                   "-t", "60", "-o", opts, "start"], 90)
        self.started = True
        atexit.register(self.stop)
        return self

    def restart(self):
        """A fast restart: every client connection is cut."""
        self._run([PG_BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "pg.log", "-w", "-t", "60",
                   "-m", "fast", "-o", self.opts, "restart"], 90)

    def _run(self, cmd, timeout):
        cp = subprocess.run(_as_owner(cmd), capture_output=True, text=True, timeout=timeout)
        if cp.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {cp.stdout}\n{cp.stderr}\n{self.log()}")
        return cp

    def log(self):
        try:
            return (self.dir / "pg.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.started:
            self.started = False
            subprocess.run(_as_owner([PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate",
                                      "-w", "-t", "30", "stop"]), capture_output=True, timeout=40)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db):
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres", check=True):
        """Runs sql; returns the rows as lists of strings (unaligned, tuples only)."""
        env = dict(os.environ, PGPASSWORD=self.password)
        cp = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                             "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                             "-U", USER, "-d", db, "-c", sql],
                            capture_output=True, text=True, timeout=30, env=env)
        if check and cp.returncode != 0:
            raise AssertionError(f"psql {sql!r}: {cp.stderr}")
        return [ln.split("\t") for ln in cp.stdout.splitlines() if ln]

    def create_db(self, name):
        if name not in self.dbs:
            self.psql(f'CREATE DATABASE "{name}"')
            self.dbs.add(name)
        return name

    def write_password(self, path):
        Path(path).write_text(self.password + "\n")
        os.chmod(path, 0o600)

    def store_section(self, d, db=None):
        """The [store] keys for a mefd in folder d (its own database unless db is given)."""
        d = Path(d)
        db = self.create_db(db or "m_" + hashlib.sha1(str(d).encode()).hexdigest()[:16])
        self.write_password(d / "pgpass")
        return (f"backend = postgresql\nurl = {self.url(db)}\n"
                f"password_file = {d}/pgpass\nkek_file = {d}/kek\n")


_session = None


def session_server():
    """One server per test session (MEFD_STORE=postgresql)."""
    global _session
    if _session is None:
        why = missing()
        if why:
            raise RuntimeError(f"MEFD_STORE=postgresql: {why}")
        _session = PgServer().start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _session.psql("SELECT 1", check=False):
                break
            time.sleep(0.2)
    return _session
