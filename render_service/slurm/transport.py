"""Running commands where Slurm is: over SSH (paramiko, host key verified) or on this machine.

The rest of the Slurm layer talks to a ``CommandRunner`` only, so unit tests use a fake and integration tests the
real SSH server.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class TransportError(RuntimeError):
    """The command could not be run at all (connection, authentication, host key, timeout)."""


@dataclass(frozen=True)
class CommandResult:
    """What a command returned."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def check(self) -> CommandResult:
        """Return self when the exit code is 0; raise TransportError quoting the command and its stderr otherwise."""
        if self.exit_code != 0:
            raise TransportError(
                f"`{shlex.join(self.argv)}` exited {self.exit_code}: {self.stderr.strip() or self.stdout.strip()}")
        return self


class CommandRunner(Protocol):
    """Runs a command (argv, never a shell string) where the Slurm client tools are."""

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout_s: float = 60.0) -> CommandResult:
        """Run ``argv`` and return its result; raise TransportError when it cannot be run."""
        ...


class LocalRunner:
    """Runs commands on this machine (a login node running the service itself)."""

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout_s: float = 60.0) -> CommandResult:
        """Run ``argv`` locally."""
        try:
            proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(f"cannot run `{shlex.join(argv)}`: {exc}") from exc
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


class SSHRunner:
    """Runs commands on a login node over SSH, verifying its host key against a known_hosts file.

    Unknown or changed host keys are refused (paramiko's RejectPolicy): collect the key once with ``ssh-keyscan``
    into the known_hosts file the settings name.
    """

    def __init__(self, host: str, port: int, user: str, key_path: str | Path, known_hosts_path: str | Path,
                 connect_timeout_s: float = 10.0) -> None:
        self.host, self.port, self.user = host, port, user
        self.key_path, self.known_hosts_path = Path(key_path), Path(known_hosts_path)
        self.connect_timeout_s = connect_timeout_s
        self._client: Any = None

    def _connect(self) -> Any:
        import paramiko

        if self._client is not None and self._client.get_transport() is not None \
                and self._client.get_transport().is_active():
            return self._client
        if not self.key_path.is_file():
            raise TransportError(f"SSH key {self.key_path} does not exist; point the settings at the private key that "
                                 f"{self.user}@{self.host} accepts")
        if not self.known_hosts_path.is_file():
            raise TransportError(f"known_hosts file {self.known_hosts_path} does not exist; collect the login node's "
                                 f"key with `ssh-keyscan -p {self.port} {self.host} >> {self.known_hosts_path}`")
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(self.host, port=self.port, username=self.user, key_filename=str(self.key_path),
                           timeout=self.connect_timeout_s, allow_agent=False, look_for_keys=False)
        except paramiko.SSHException as exc:
            raise TransportError(f"SSH to {self.user}@{self.host}:{self.port} failed: {exc}") from exc
        except OSError as exc:
            raise TransportError(f"cannot reach {self.host}:{self.port}: {exc}") from exc
        self._client = client
        return client

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout_s: float = 60.0) -> CommandResult:
        """Run ``argv`` on the login node (quoted for its shell)."""
        import paramiko

        client = self._connect()
        try:
            chan_in, chan_out, chan_err = client.exec_command(shlex.join(argv), timeout=timeout_s)
            if stdin is not None:
                chan_in.write(stdin)
            chan_in.channel.shutdown_write()
            out = chan_out.read().decode(errors="replace")
            err = chan_err.read().decode(errors="replace")
            code = chan_out.channel.recv_exit_status()
        except (OSError, EOFError, paramiko.SSHException) as exc:  # socket.timeout is an OSError
            self.close()  # a broken session is not reused; the next call reconnects
            raise TransportError(f"`{shlex.join(argv)}` on {self.host} did not finish: {exc}") from exc
        return CommandResult(tuple(argv), code, out, err)

    def put_text(self, remote_path: str, text: str) -> None:
        """Write a text file on the login node over SFTP."""
        import paramiko

        client = self._connect()
        try:
            with client.open_sftp() as sftp, sftp.open(remote_path, "w") as handle:
                handle.write(text)
        except (OSError, paramiko.SSHException) as exc:  # SFTP reports remote errors as IOError
            raise TransportError(f"cannot write {remote_path} on {self.host}: {exc}") from exc

    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> SSHRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
