"""``SSHRunner``: the ``CommandRunner`` of a login node reached over SSH (paramiko, key auth, host key verified)."""

from __future__ import annotations

import posixpath
import shlex
import stat
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import paramiko

from render_service.slurm.errors import RemoteFileError, RemoteFileNotFound, TransportError
from render_service.slurm.transport import (
    DEFAULT_READ_MAX_BYTES,
    CommandResult,
    check_max_bytes,
    staged_local_path,
    too_large_message,
)

# What a dropped or stalled connection raises, inside a command or an SFTP call. Any other OSError from SFTP is the
# server refusing one file operation (paramiko turns SFTP status codes into IOError / FileNotFoundError / ...).
_CONNECTION_ERRORS = (EOFError, paramiko.SSHException, paramiko.SFTPError, ConnectionError, TimeoutError)


class SSHRunner:
    """Runs commands and handles files on a login node over SSH, verifying its host key against a known_hosts file.

    Unknown or changed host keys are refused (paramiko's RejectPolicy): collect the key once with ``ssh-keyscan``
    into the known_hosts file the settings name. One connection and one SFTP session are kept and reused; a broken
    one is dropped and the next call reconnects.
    """

    def __init__(self, host: str, port: int, user: str, key_path: str | Path, known_hosts_path: str | Path,
                 connect_timeout_s: float = 10.0, io_timeout_s: float = 60.0) -> None:
        self.host, self.port, self.user = host, port, user
        self.key_path, self.known_hosts_path = Path(key_path), Path(known_hosts_path)
        self.connect_timeout_s = connect_timeout_s
        self.io_timeout_s = io_timeout_s
        self._client: paramiko.SSHClient | None = None
        self._sftp_client: paramiko.SFTPClient | None = None

    def _connect(self) -> paramiko.SSHClient:
        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._client
            self.close()
        if not self.key_path.is_file():
            raise TransportError(f"SSH key {self.key_path} does not exist; point the settings at the private key that "
                                 f"{self.user}@{self.host} accepts")
        if not self.known_hosts_path.is_file():
            raise TransportError(f"known_hosts file {self.known_hosts_path} does not exist; collect the login node's "
                                 f"key with `ssh-keyscan -p {self.port} {self.host} >> {self.known_hosts_path}`")
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        where = f"{self.user}@{self.host}:{self.port}"
        try:
            client.connect(self.host, port=self.port, username=self.user, key_filename=str(self.key_path),
                           timeout=self.connect_timeout_s, allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException as exc:
            raise TransportError(f"SSH to {where} failed: its host key differs from the one in "
                                 f"{self.known_hosts_path} ({exc}); if the login node's key was changed on purpose, "
                                 "replace its line there") from exc
        except paramiko.AuthenticationException as exc:
            raise TransportError(f"SSH to {where} failed: the key {self.key_path} was refused ({exc}); add its public "
                                 f"key to ~{self.user}/.ssh/authorized_keys on the login node") from exc
        except paramiko.SSHException as exc:
            raise TransportError(f"SSH to {where} failed: {exc}; if the host is unknown, collect its key with "
                                 f"`ssh-keyscan -p {self.port} {self.host} >> {self.known_hosts_path}`") from exc
        except OSError as exc:
            raise TransportError(f"cannot reach {self.host}:{self.port}: {exc}") from exc
        self._client = client
        return client

    def _sftp(self) -> paramiko.SFTPClient:
        client = self._connect()
        if self._sftp_client is not None:
            channel = self._sftp_client.get_channel()
            if channel is not None and not channel.closed:
                return self._sftp_client
        try:
            sftp = client.open_sftp()
        except (OSError, *_CONNECTION_ERRORS) as exc:
            self.close()
            raise TransportError(f"cannot open SFTP to {self.user}@{self.host}:{self.port}: {exc}") from exc
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(self.io_timeout_s)  # a stalled server must not hang a worker forever
        self._sftp_client = sftp
        return sftp

    @contextmanager
    def _file_op(self, doing: str, path: str) -> Iterator[None]:
        """Turn what paramiko raises during a file operation into the typed errors, naming host and path."""
        try:
            yield
        except (RemoteFileError, TransportError):
            raise
        except _CONNECTION_ERRORS as exc:
            self.close()  # a broken session is not reused; the next call reconnects
            raise TransportError(f"cannot {doing} {path} on {self.host}: the connection failed: {exc}") from exc
        except FileNotFoundError as exc:
            raise RemoteFileNotFound(f"cannot {doing} {path} on {self.host}: it does not exist",
                                     self.host, path) from exc
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise RemoteFileError(f"cannot {doing} {path} on {self.host}: {reason}", self.host, path) from exc

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout_s: float = 60.0) -> CommandResult:
        """Run ``argv`` on the login node (quoted for its shell)."""
        client = self._connect()
        try:
            chan_in, chan_out, chan_err = client.exec_command(shlex.join(argv), timeout=timeout_s)
            if stdin is not None:
                chan_in.write(stdin)
            chan_in.channel.shutdown_write()
            out = chan_out.read().decode(errors="replace")
            err = chan_err.read().decode(errors="replace")
            code = chan_out.channel.recv_exit_status()
        except (OSError, *_CONNECTION_ERRORS) as exc:  # socket.timeout is an OSError
            self.close()  # a broken session is not reused; the next call reconnects
            raise TransportError(f"`{shlex.join(argv)}` on {self.host} did not finish: {exc}") from exc
        return CommandResult(tuple(argv), code, out, err)

    def put_text(self, remote_path: str, text: str) -> None:
        """Write a text file atomically: a temporary file in the same folder, then a POSIX rename over the target."""
        sftp = self._sftp()
        folder, name = posixpath.split(remote_path)
        staging = posixpath.join(folder, f".{name}.tmp-{uuid.uuid4().hex[:8]}")
        with self._file_op("write", remote_path):
            try:
                with sftp.open(staging, "w") as handle:
                    handle.write(text.encode("utf-8"))
                sftp.posix_rename(staging, remote_path)  # OpenSSH's extension: replaces the target in one step
            except BaseException:
                self._remove_quietly(sftp, staging)
                raise

    def _remove_quietly(self, sftp: paramiko.SFTPClient, path: str) -> None:
        try:
            sftp.remove(path)
        except (OSError, *_CONNECTION_ERRORS):
            pass  # the temporary was never created, or the connection is gone: the original error is what matters

    def make_dirs(self, path: str) -> None:
        """Create a folder and its missing parents (``mkdir -p``)."""
        sftp = self._sftp()
        missing: list[str] = []
        current = posixpath.normpath(path)
        with self._file_op("create the folder", path):
            while True:
                try:
                    info = sftp.stat(current)
                except FileNotFoundError:
                    missing.append(current)
                    parent = posixpath.dirname(current)
                    if parent in (current, ""):
                        break
                    current = parent
                    continue
                if not stat.S_ISDIR(info.st_mode or 0):
                    raise RemoteFileError(f"cannot create the folder {path} on {self.host}: {current} is a file",
                                          self.host, path)
                break
            for folder in reversed(missing):
                sftp.mkdir(folder)

    def list_dir(self, path: str) -> list[str]:
        """Sorted names of the entries of a folder."""
        sftp = self._sftp()
        with self._file_op("list", path):
            try:
                return sorted(sftp.listdir(path))
            except FileNotFoundError:
                # OpenSSH answers "no such file" for a file too; say which it was
                if self.exists(path):
                    raise RemoteFileError(f"cannot list {path} on {self.host}: it is a file, not a folder",
                                          self.host, path) from None
                raise

    def read_text(self, path: str, max_bytes: int = DEFAULT_READ_MAX_BYTES, tail: bool = False) -> str:
        """A text file, refused over ``max_bytes`` unless ``tail`` asks for its last ``max_bytes`` bytes."""
        check_max_bytes(max_bytes)
        sftp = self._sftp()
        with self._file_op("read", path), sftp.open(path, "rb") as handle:
            size = handle.stat().st_size or 0
            if size > max_bytes:
                if not tail:
                    raise RemoteFileError(too_large_message(self.host, path, size, max_bytes), self.host, path)
                handle.seek(size - max_bytes)
            data = handle.read(max_bytes)
        return data.decode("utf-8", errors="replace")

    def exists(self, path: str) -> bool:
        """True when a file or folder exists at ``path`` (a dangling link does not count)."""
        sftp = self._sftp()
        with self._file_op("look at", path):
            try:
                sftp.stat(path)
            except FileNotFoundError:
                return False
        return True

    def fetch(self, remote_path: str, local_path: str | Path) -> int:
        """Copy a file or folder into ``local_path`` (which must not exist) through a hidden temporary name."""
        sftp = self._sftp()
        with self._file_op("fetch", remote_path):
            info = sftp.stat(remote_path)
        with staged_local_path(local_path) as staging:
            if stat.S_ISDIR(info.st_mode or 0):
                return self._get_tree(sftp, remote_path, staging)
            with self._file_op("fetch", remote_path):
                sftp.get(remote_path, str(staging))  # checks that the size it got is the size it was told
            return 1

    def _get_tree(self, sftp: paramiko.SFTPClient, remote_dir: str, local_dir: Path) -> int:
        local_dir.mkdir()
        with self._file_op("fetch", remote_dir):
            entries = sorted(sftp.listdir_attr(remote_dir), key=lambda e: e.filename)
        copied = 0
        for entry in entries:
            remote = posixpath.join(remote_dir, entry.filename)
            mode = entry.st_mode or 0
            if stat.S_ISLNK(mode):
                with self._file_op("fetch", remote):
                    mode = sftp.stat(remote).st_mode or 0
                if stat.S_ISDIR(mode):
                    mode = 0  # a linked folder could loop or leave the dataset; refuse it rather than skip it
            if stat.S_ISDIR(mode):
                copied += self._get_tree(sftp, remote, local_dir / entry.filename)
            elif stat.S_ISREG(mode):
                with self._file_op("fetch", remote):
                    sftp.get(remote, str(local_dir / entry.filename))
                copied += 1
            else:
                raise RemoteFileError(f"cannot fetch {remote} on {self.host}: not a regular file or folder",
                                      self.host, remote)
        return copied

    def close(self) -> None:
        """Close the connection and its SFTP session (a later call reconnects)."""
        if self._sftp_client is not None:
            try:
                self._sftp_client.close()
            except (OSError, *_CONNECTION_ERRORS):
                pass  # closing a dead session: nothing to do
            self._sftp_client = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> SSHRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
