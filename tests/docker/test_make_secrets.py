"""docker/make-secrets.sh makes the keys compose mounts: a worker key pair, the test cluster's host key with a
known_hosts line the worker's paramiko accepts for `login`, a munge key; private ones 0600 in a 0700 folder; run
again, it keeps them."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import paramiko

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "make-secrets.sh"


def _make(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=60)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_makes_every_secret_with_private_modes(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    made = _make(folder)
    assert made.returncode == 0, made.stderr
    assert {p.name for p in folder.iterdir()} == {"ssh_key", "ssh_key.pub", "known_hosts", "munge.key",
                                                  "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}
    assert _mode(folder) == 0o700
    for private in ("ssh_key", "ssh_host_ed25519_key", "munge.key"):
        assert _mode(folder / private) == 0o600, private
    assert (folder / "munge.key").stat().st_size == 1024
    if os.geteuid() == 0:  # the worker (uid 10001) reads its key through a bind mount
        assert (folder / "ssh_key").stat().st_uid == 10001
    # the client key loads, and the public half is its own
    key = paramiko.Ed25519Key.from_private_key_file(str(folder / "ssh_key"))
    assert (folder / "ssh_key.pub").read_text().split()[1] == key.get_base64()


def test_known_hosts_holds_the_login_nodes_key_as_paramiko_looks_it_up(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    assert _make(folder).returncode == 0
    host_key = paramiko.Ed25519Key.from_private_key_file(str(folder / "ssh_host_ed25519_key"))
    known = paramiko.HostKeys(str(folder / "known_hosts"))
    # port 22: paramiko's SSHClient looks the plain host name up, as the worker connects to login:22
    entry = known.lookup("login")
    assert entry is not None and entry["ssh-ed25519"] == host_key
    assert known.lookup("[login]:2222") is None


def test_run_again_keeps_every_key(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    assert _make(folder).returncode == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    again = _make(folder)
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
