# SPDX-License-Identifier: BSD-2-Clause
"""mefd --check-config and --version (decisions §6): the shipped example is
accepted; an unknown key, a bad port and a private key readable by others
are refused with FILE:LINE; a missing file is refused."""

import os
import re
import shutil
from pathlib import Path

import pytest

import harness

EXAMPLE = harness.REPO / "conf" / "mefd.conf.example"
PATH_KEYS = {("store", "path"), ("store", "kek_file"), ("tls", "certificate"),
             ("tls", "private_key"), ("tls", "client_ca"), ("ca", "certificate"),
             ("ca", "private_key")}


def check(conf):
    return harness.run([harness.MEFD, "-c", conf, "--check-config"], timeout=15)


def good_conf(d, pki, extra=""):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    harness.write_kek(d / "kek")
    ports = {"coap": harness.free_port(), "https_psk": harness.free_port(),
             "https_cert": harness.free_port()}
    conf = d / "mefd.conf"
    conf.write_text(harness.conf_text(d, pki, ports, extra=extra))
    return conf


def line_of(conf, pattern):
    for i, ln in enumerate(Path(conf).read_text().splitlines(), 1):
        if re.search(pattern, ln):
            return i
    raise AssertionError(f"{pattern} not in {conf}")


def assert_refused_at(cp, conf, line):
    assert cp.returncode != 0, f"accepted:\n{cp.stdout}{cp.stderr}"
    where = f"{os.path.basename(conf)}:{line}"
    assert where in cp.stderr, f"expected {where} in stderr:\n{cp.stderr}"


def test_version(binaries):
    cp = harness.run([harness.MEFD, "--version"])
    assert cp.returncode == 0, cp.stderr
    assert re.search(r"\S", cp.stdout + cp.stderr), "no version printed"


def test_harness_config_is_valid(binaries, pki, tmp_path):
    cp = check(good_conf(tmp_path, pki))
    assert cp.returncode == 0, cp.stdout + cp.stderr


def _materialise_example(tmp_path, pki):
    """Copies the example with each file-valued key pointed at a real file
    of the right kind in tmp_path; every other line is kept as shipped."""
    src = {("tls", "certificate"): pki.mef.crt, ("tls", "private_key"): pki.mef.key,
           ("tls", "client_ca"): pki.ca.crt, ("ca", "certificate"): pki.ca.crt,
           ("ca", "private_key"): pki.ca.key}
    out, section = [], ""
    for ln in EXAMPLE.read_text().splitlines():
        m = re.match(r"\s*\[(\w+)\]", ln)
        if m:
            section = m.group(1)
        m = re.match(r"\s*(\w+)\s*=\s*(\S.*?)\s*$", ln)
        if m and (section, m.group(1)) in PATH_KEYS:
            dest = tmp_path / f"{section}-{m.group(1)}"
            if (section, m.group(1)) == ("store", "kek_file"):
                harness.write_kek(dest)
            elif (section, m.group(1)) in src:
                shutil.copy(src[(section, m.group(1))], dest)
                if "private" in m.group(1):
                    os.chmod(dest, 0o600)
            ln = f"{m.group(1)} = {dest}"
        out.append(ln)
    conf = tmp_path / "mefd.conf"
    conf.write_text("\n".join(out) + "\n")
    return conf


def test_example_config_is_accepted(binaries, pki, tmp_path):
    if not EXAMPLE.exists():
        pytest.fail("conf/mefd.conf.example is missing")
    cp = check(_materialise_example(tmp_path, pki))
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_unknown_key_refused(binaries, pki, tmp_path):
    conf = good_conf(tmp_path, pki)
    text = conf.read_text().replace("[mef]\n", "[mef]\nno_such_key = 1\n", 1)
    conf.write_text(text)
    assert_refused_at(check(conf), conf, line_of(conf, r"^no_such_key"))


def test_missing_file_refused(binaries, tmp_path):
    missing = tmp_path / "nope.conf"
    cp = check(missing)
    assert cp.returncode != 0
    assert "nope.conf" in cp.stderr, cp.stderr


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_bad_port_refused(binaries, pki, tmp_path, port):
    conf = good_conf(tmp_path, pki)
    text = re.sub(r"^psk_listen = .*$", f"psk_listen = 127.0.0.1:{port}", conf.read_text(),
                  flags=re.M)
    conf.write_text(text)
    assert_refused_at(check(conf), conf, line_of(conf, r"^psk_listen"))


@pytest.mark.parametrize("key", ["private_key", "kek_file"])
def test_key_readable_by_others_refused(binaries, pki, tmp_path, key):
    conf = good_conf(tmp_path, pki)
    if key == "private_key":
        loose = tmp_path / "loose.key"
        shutil.copy(pki.mef.key, loose)
        text = conf.read_text().replace(f"private_key = {pki.mef.key}",
                                        f"private_key = {loose}", 1)
        conf.write_text(text)
    else:
        loose = tmp_path / "kek"
    os.chmod(loose, 0o644)
    assert_refused_at(check(conf), conf, line_of(conf, rf"^{key} = {loose}"))


def test_check_config_binds_nothing(binaries, pki, tmp_path):
    """--check-config stops before binding: the ports stay free."""
    conf = good_conf(tmp_path, pki)
    port = int(re.search(r"psk_listen = 127.0.0.1:(\d+)", conf.read_text()).group(1))
    assert check(conf).returncode == 0
    assert not harness.tcp_open(port)
