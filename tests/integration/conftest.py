"""Fixtures of the integration tests: an SSH connection to the loopback cluster as its unprivileged user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from render_service.slurm.ssh import SSHRunner


@pytest.fixture(scope="module")
def ssh(stack_env: dict[str, str]) -> Iterator[SSHRunner]:
    """paramiko to the stack's sshd, host key verified against the generated known_hosts."""
    runner = SSHRunner(stack_env["SEMCOAT_SSH_HOST"], int(stack_env["SEMCOAT_SSH_PORT"]), stack_env["SEMCOAT_SSH_USER"],
                       stack_env["SEMCOAT_SSH_KEY"], stack_env["SEMCOAT_SSH_KNOWN_HOSTS"])
    yield runner
    runner.close()

