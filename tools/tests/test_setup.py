"""tools/setup on a Debian python without venv support: python3-venv through apt (as root)."""

import os
import subprocess
import sys

from conftest import TOOLS


def fake_bin(tmp_path, uid: int):
    """PATH with fakes: a python3 whose ensurepip is missing (Debian without python3-venv),
    apt-get that records its calls, dpkg-query that finds every package installed, id -u."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    calls = tmp_path / "apt.log"
    scripts = {
        "python3": f'case "$*" in *ensurepip*) exit 1;; esac\nexec {sys.executable} "$@"\n',
        "apt-get": f'echo "$*" >> {calls}\n',
        "dpkg-query": 'echo "install ok installed"\n',
        "id": f'echo {uid}\n',
    }
    for name, body in scripts.items():
        (bin_ / name).write_text("#!/bin/sh\n" + body)
        (bin_ / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}",
           "DLDIY_VENV": str(tmp_path / "venv"), "PYTHON": str(bin_ / "python3")}
    return env, calls


def test_root_installs_python3_venv_after_apt_update(tmp_path):
    env, calls = fake_bin(tmp_path, 0)
    p = subprocess.run([str(TOOLS / "setup"), "--apt-only"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = calls.read_text().splitlines()
    assert lines[0].startswith("update") and "install" in lines[1]
    assert "python3-venv" in lines[1].split()


def test_without_root_it_says_what_to_install_and_stops(tmp_path):
    env, calls = fake_bin(tmp_path, 1000)
    p = subprocess.run([str(TOOLS / "setup")], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 1
    assert "python3-venv" in p.stderr and "cannot create a venv" in p.stderr
    assert not calls.exists() and not (tmp_path / "venv").exists()
