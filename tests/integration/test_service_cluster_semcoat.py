"""The service checks the cluster's semcoat before it submits, on the real stack (``semcoat serve`` and ``semcoat
worker`` as processes, sshd and Slurm on loopback): pointed at a cluster semcoat that is not the service's (a wrapper
in a folder of the cluster user's that reports another batch-spec schema, or answers as a semcoat older than
``semcoat version`` does), a batch fails at submit with one sentence naming both and the fix, nothing reaches Slurm,
and ``/health`` says the same; pointed at the real cluster environment, ``/health`` says it matches.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from render_service.slurm.ssh import SSHRunner
from semcoat_cli.versions import installed_version
from tests.integration.service import Service
from tests.integration.test_service_slurm import jobs_named, spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OTHER_SCHEMA = "0123456789ab" + "c" * 52


@pytest.fixture(scope="module")
def cluster_folder(ssh: SSHRunner, stack_env: dict[str, str]) -> Iterator[str]:
    """A temporary folder of the cluster user's, in its home (readable and runnable by that user only)."""
    made = ssh.run(["mktemp", "-d", f"{stack_env['SEMCOAT_CLUSTER_HOME']}/semcoat-compat-test.XXXXXX"]).check()
    folder = made.stdout.strip()
    ssh.make_dirs(f"{folder}/other/bin")
    ssh.make_dirs(f"{folder}/old/bin")
    yield folder
    ssh.run(["rm", "-rf", folder]).check()


def wrapper(ssh: SSHRunner, path: str, version_branch: str, real: str) -> str:
    """A cluster semcoat at ``path`` that answers ``semcoat version`` with ``version_branch`` and runs the real one
    for everything else."""
    ssh.put_text(path, f'#!/bin/sh\nif [ "$1" = version ]; then\n{version_branch}\nfi\nexec {real} "$@"\n')
    ssh.run(["chmod", "755", path]).check()
    return path


def other_schema_semcoat(ssh: SSHRunner, folder: str, real: str) -> str:
    info = dataclasses.replace(installed_version(), batch_schema=OTHER_SCHEMA)
    return wrapper(ssh, f"{folder}/other/bin/semcoat", f"echo '{info.to_json()}'; exit 0", real)


def old_semcoat(ssh: SSHRunner, folder: str, real: str) -> str:
    answer = ("echo \"Usage: semcoat [OPTIONS] COMMAND [ARGS]...\" >&2; "
              "echo \"Error: No such command 'version'.\" >&2; exit 2")
    return wrapper(ssh, f"{folder}/old/bin/semcoat", answer, real)


def slurm_health(svc: Service, timeout_s: float, until: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The worker's report on the Slurm backend once its detail holds ``until``."""
    deadline = time.monotonic() + timeout_s
    while True:
        health = httpx.get(f"{svc.url}/api/v1/health", timeout=10).json()
        slurm = health["backends"]["slurm"]
        if until in slurm["detail"]:
            return health, slurm
        assert time.monotonic() < deadline, (health, svc.worker_log())
        time.sleep(0.3)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("make, words", [
    (other_schema_semcoat, [f"its batch-spec schema differs (0123456789ab, the service's "
                            f"{installed_version().batch_schema[:12]})"]),
    (old_semcoat, ["it is older than the service's and has no `semcoat version` command (service: semcoat "]),
], ids=["other-schema", "too-old"])
def test_a_cluster_semcoat_that_does_not_match_fails_the_batch_at_submit_and_health_says_so(
        ssh: SSHRunner, stack_env: dict[str, str], cluster_folder: str, tmp_path: Path,
        make: Any, words: list[str]) -> None:
    semcoat = make(ssh, cluster_folder, stack_env["SEMCOAT_CLUSTER_SEMCOAT"])
    svc = Service(stack_env, tmp_path / "data", worker_env={"SEMCOAT_CLUSTER_SEMCOAT": semcoat}).start()
    try:
        batch = svc.submit(spec("it-compat", 2), images_per_task=1)
        done = svc.wait(batch["id"], timeout_s=90)
        error = done["error"]
        assert done["state"] == "failed" and error is not None, done
        assert error.startswith(f"The cluster's semcoat ({semcoat} on {stack_env['SEMCOAT_SSH_HOST']}) does not "
                                "match this service's, so no batch or training is submitted to Slurm: "), error
        for word in [*words, f"rerun `bash scripts/install-render-env.sh {cluster_folder}/"]:
            assert word in error, (word, error)
        assert "Traceback" not in error and done["slurm_job_ids"] == [] and done["tasks"]["failed"] == 2
        assert jobs_named(ssh, stack_env, f"semcoat-{batch['id']}") == set()
        assert not ssh.exists(f"{stack_env['SEMCOAT_CLUSTER_HOME']}/semcoat-batches/{batch['id']}")

        health, slurm = slurm_health(svc, 30, "does not match")
        assert slurm["reachable"] is False and health["status"] == "degraded"
        assert slurm["detail"].startswith(error), (slurm["detail"], error)
        assert health["backends"]["local"]["reachable"] is True
    finally:
        svc.stop()


@pytest.mark.timeout(90)
def test_the_clusters_own_environment_matches_and_health_says_so(
        stack_env: dict[str, str], tmp_path: Path) -> None:
    svc = Service(stack_env, tmp_path / "data").start()
    try:
        health, slurm = slurm_health(svc, 45, "Slurm on")
        assert slurm["reachable"] is True, (slurm, svc.worker_log())
        assert f"its semcoat matches this service's ({installed_version().describe()})" in slurm["detail"]
        assert "no train part" not in slurm["detail"]  # the stack installs it with --extras render,train
    finally:
        svc.stop()
