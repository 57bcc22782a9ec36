# SPDX-License-Identifier: BSD-2-Clause
"""pytest fixtures for the integration suite: one PKI per session, a shared
mefd per test module (with a standard set of enrolees), and a factory for
tests that need a daemon of their own (signals, reload, shutdown)."""

import os
import secrets
import string
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ALNUM = string.ascii_letters + string.digits


def new_psk(n=24):
    """A printable PSK: coap-client-openssl -k takes ASCII, s_client -psk hex."""
    ascii_key = "".join(secrets.choice(ALNUM) for _ in range(n))
    return ascii_key, ascii_key.encode().hex()


def _need(b):
    if not os.access(b, os.X_OK):
        pytest.fail(f"{b} is not built (MEFD_BUILD={harness.BUILD})")


@pytest.fixture(scope="session")
def binaries():
    """mefd must exist (test_config needs nothing else)."""
    _need(harness.MEFD)
    return harness.MEFD


@pytest.fixture(scope="session")
def mefctl(binaries):
    _need(harness.MEFCTL)
    return harness.MEFCTL


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return harness.Pki.create(tmp_path_factory.mktemp("pki"))


class Enrolees:
    """The standard clients every shared daemon knows."""

    def __init__(self, d, pki):
        self.psk_ascii, self.psk_hex = new_psk()
        self.psk_identity = "psk1@mef.example.com"
        d.add_psk_client("psk1", self.psk_identity, self.psk_hex)
        self.maf_ascii, self.maf_hex = new_psk()
        d.add_psk_client("maf.example.com", "maf@mef.example.com", self.maf_hex)
        d.set_targets("psk1", "maf.example.com:21")
        for name, c in pki.clients.items():
            d.add_cert_client(c.san, c.san)
        self.cert = pki.clients["cse1"]


@pytest.fixture(scope="module")
def mefd(mefctl, pki, tmp_path_factory):
    d = harness.Mefd(tmp_path_factory.mktemp("mefd"), pki)
    d.start()
    d.enrolees = Enrolees(d, pki)
    yield d
    d.stop(expect_rc=0)


@pytest.fixture
def mefd_factory(mefctl, pki, tmp_path):
    """Returns make(level="info", extra="", start=True) -> Mefd; all stopped at teardown."""
    made = []

    def make(level="info", extra="", start=True):
        d = harness.Mefd(tmp_path / f"mefd{len(made)}", pki, level=level, extra=extra)
        made.append(d)
        if start:
            d.start()
        return d
    yield make
    for d in made:
        if d.alive():
            d.stop(expect_rc=None)
