"""docker/compose.yaml, checked without a Docker engine: every service health-checked and started only when what it
needs is healthy, every file, build context and target it names exists, ports on 127.0.0.1 only, no secret in it,
settings the service accepts, and a test cluster whose parts agree (slurm.conf, volumes, secrets, settings)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from render_service.settings import ENV_PREFIX, Settings, load_settings
from tests.docker import dockerfile as df
from tests.docker.composefile import (
    COMPOSE,
    COMPOSE_FILE,
    REPO,
    SERVICES,
    env_files,
    environment,
    mounts,
    read_env_file,
)

DOCKER = REPO / "docker"
SEMCOAT_SERVICES = ("api", "worker")
CLUSTER_SERVICES = ("slurmctld", "slurmd", "login")
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|PRIVATE|(^|_)KEY($|_)", re.IGNORECASE)
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def _healthcheck(name: str) -> list[str]:
    test: list[str] = SERVICES[name]["healthcheck"]["test"]
    return test


def _made_secrets(tmp_path: Path) -> set[str]:
    made = subprocess.run(["bash", str(DOCKER / "make-secrets.sh"), str(tmp_path / "secrets")], capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    return {p.name for p in (tmp_path / "secrets").iterdir()}


def _slurm_conf(tmp_path: Path) -> dict[str, str]:
    """slurm.conf as the test cluster's containers write it (stack.sh conf with their environment), keyed by its
    first word; paths under the stack's state folder as the containers see them."""
    env = {**os.environ, **environment("slurmctld"), "SEMCOAT_STACK_DIR": str(tmp_path / "state"),
           "SEMCOAT_STACK_SLURM_CONF": str(tmp_path / "slurm.conf")}
    written = subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), "conf"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    text = (tmp_path / "slurm.conf").read_text().replace(str(tmp_path / "state"), "/var/lib/semcoat-stack")
    conf = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            conf[key] = value
    return conf


# -- services and health -------------------------------------------------------------------------------------------
def test_the_services() -> None:
    assert set(SERVICES) == {"redis", *SEMCOAT_SERVICES, *CLUSTER_SERVICES}
    for name in CLUSTER_SERVICES:
        assert SERVICES[name].get("profiles") == ["test-cluster"], f"{name} must start only with its profile"
    for name in ("redis", *SEMCOAT_SERVICES):
        assert "profiles" not in SERVICES[name], f"{name} is part of every deployment"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_real_health_check(name: str) -> None:
    check = SERVICES[name].get("healthcheck")
    assert check and not check.get("disable"), f"{name} has no health check"
    test = check["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: test {test}"
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in check, f"{name}: health check without {key}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_are_awaited_healthy(name: str) -> None:
    depends = SERVICES[name].get("depends_on", {})
    assert isinstance(depends, dict), f"{name}: depends_on as a list only waits for the start"
    for other, rule in depends.items():
        assert other in SERVICES, f"{name} depends on {other}, which is not a service"
        assert rule.get("condition") == "service_healthy", f"{name} -> {other}: {rule}"
        if rule.get("required") is False:  # only for a part that a profile may leave out
            assert SERVICES[other].get("profiles") and not SERVICES[name].get("profiles"), f"{name} -> {other}"


def test_no_dependency_cycle_and_the_worker_waits_for_everything() -> None:
    def above(name: str, seen: tuple[str, ...] = ()) -> set[str]:
        assert name not in seen, f"dependency cycle: {' -> '.join((*seen, name))}"
        found = set()
        for other in SERVICES[name].get("depends_on", {}):
            found |= {other} | above(other, (*seen, name))
        return found

    for name in SERVICES:
        above(name)
    assert above("worker") == {"redis", "api", "login", "slurmd", "slurmctld"}
    assert above("api") == {"redis"}  # never on a worker: /health would wait for the API that the worker waits for


# -- files, builds, images -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(n for n in SERVICES if "build" in SERVICES[n]))
def test_build_context_dockerfile_and_target_exist(name: str) -> None:
    build = SERVICES[name]["build"]
    context = (COMPOSE_FILE.parent / build["context"]).resolve()
    assert context == REPO, f"{name}: context {context}"
    dockerfile = context / build["dockerfile"]
    assert dockerfile.is_file(), f"{name}: no {dockerfile}"
    assert build["target"] in df.stages(dockerfile), f"{name}: no target {build['target']} in {dockerfile.name}"
    assert SERVICES[name]["image"].endswith(":local"), f"{name}: built here, named as a local image"


@pytest.mark.parametrize("name", SEMCOAT_SERVICES)
def test_the_health_check_script_is_in_the_image(name: str) -> None:
    stages = df.stages(COMPOSE_FILE.parent / SERVICES[name]["build"]["context"] / SERVICES[name]["build"]["dockerfile"])
    placed = df.image_files(stages, SERVICES[name]["build"]["target"])
    test = _healthcheck(name)
    assert test[1] == "/opt/semcoat/.venv/bin/python", test  # the venv scripts/setup.sh makes in /opt/semcoat
    assert placed.get(test[2]) == "docker/healthcheck.py", f"{name}: {test[2]} is not copied into the image"
    assert test[3] == {"api": "api", "worker": "worker"}[name]


@pytest.mark.parametrize("name", SEMCOAT_SERVICES)
def test_the_command_exists_in_the_image(name: str) -> None:
    stages = df.stages(REPO / SERVICES[name]["build"]["dockerfile"])
    entrypoint = df.last(stages, SERVICES[name]["build"]["target"], "ENTRYPOINT")
    assert entrypoint is not None and entrypoint.words() == ["semcoat"]
    command = SERVICES[name]["command"]
    assert command[0] == {"api": "serve", "worker": "worker"}[name]
    if name == "api":  # the API listens where the port is published and the health check looks
        assert command[command.index("--host") + 1] == "0.0.0.0"
        assert SERVICES[name]["ports"] == [f"127.0.0.1:{command[command.index('--port') + 1]}:8000"]
    accepted, output = df.semcoat_accepts(command)
    assert accepted, f"semcoat {' '.join(command)}: {output}"


def test_env_files_exist() -> None:
    for name, service in SERVICES.items():
        for path in env_files(service):
            assert path.is_file(), f"{name}: env file {path} does not exist"


def test_volumes_are_declared_and_secrets_are_what_make_secrets_writes(tmp_path: Path) -> None:
    for name in SERVICES:
        for target, source in mounts(name).items():
            assert source in COMPOSE["volumes"], f"{name}: {source} -> {target} is not a declared volume"
        for secret in SERVICES[name].get("secrets", []):
            assert secret in COMPOSE["secrets"], f"{name}: secret {secret} is not declared"
    made = _made_secrets(tmp_path)
    for secret, spec in COMPOSE["secrets"].items():
        path = Path(spec["file"])
        assert path.parent == Path("secrets") and path.name in made, f"secret {secret}: {spec['file']}"
    assert (DOCKER / "secrets" / ".gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]


def test_published_ports_bind_loopback_only() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond 127.0.0.1"


def test_dollars_are_valid_compose_interpolation() -> None:
    # Compose reads '$...' in every value: '$$' is a literal '$', else it must be ${NAME...} or $NAME
    text = COMPOSE_FILE.read_text().replace("$$", "")
    for match in re.finditer(r"\$", text):
        rest = text[match.end():]
        assert re.match(r"\{[A-Za-z_]\w*(:?[-?+][^}]*)?\}|[A-Za-z_]", rest), f"bad '$' before {rest[:30]!r}"


# -- settings and secrets ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SEMCOAT_SERVICES)
def test_every_semcoat_variable_is_a_setting(name: str) -> None:
    names = set(environment(name))
    for path in env_files(SERVICES[name]):
        names |= set(read_env_file(path, commented=True))  # documented ones must be spelled right too
    unknown = {n for n in names if n.startswith(ENV_PREFIX)} - SETTINGS
    assert not unknown, f"{name}: {sorted(unknown)} are not settings of render_service/settings.py"


@pytest.mark.parametrize("name", CLUSTER_SERVICES)
def test_cluster_variables_are_read_by_its_scripts(name: str) -> None:
    scripts = (REPO / "scripts" / "stack.sh").read_text() + (DOCKER / "cluster-entrypoint.sh").read_text()
    for variable in environment(name):
        assert "${" + variable + ":-" in scripts, f"{name}: nothing reads {variable}"


@pytest.mark.parametrize("name", SEMCOAT_SERVICES)
def test_the_service_accepts_its_settings(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in list(os.environ):
        if variable.startswith(ENV_PREFIX):
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)  # no stray .env
    for variable, value in environment(name).items():
        monkeypatch.setenv(variable, value)
    settings = load_settings()
    assert settings.slurm_configured and settings.redis_url == "redis://redis:6379/0"
    assert mounts(name).get(str(settings.data_dir)) == "semcoat-data", f"{name}: the data folder is not the volume"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_secret_value_in_the_compose_file(name: str) -> None:
    for variable, value in environment(name).items():
        if SECRET_NAME.search(variable):
            assert value.startswith("/run/secrets/"), f"{name}: {variable} must name a secret's file, not hold it"
    for path in [COMPOSE_FILE, *DOCKER.glob("*.env"), *DOCKER.glob("*.sh"), *DOCKER.glob("*.py")]:
        assert "PRIVATE KEY" not in path.read_text(), f"{path} holds a key"


# -- the test cluster fits together --------------------------------------------------------------------------------
def test_the_test_cluster_agrees_with_the_worker(tmp_path: Path) -> None:
    conf = _slurm_conf(tmp_path)
    worker = environment("worker")
    node = SERVICES["slurmd"]
    # Slurm's names are the compose network's
    assert conf["SlurmctldHost"] == SERVICES["slurmctld"]["hostname"] == "slurmctld"
    node_name = conf["NodeName"].split()[0]
    assert node_name == node["hostname"] and node_name in node["networks"]["default"]["aliases"]
    assert conf["NodeName"].split()[1] == f"NodeAddr={node_name}"
    assert f"-n {node_name} " in _healthcheck("slurmd")[1]
    assert conf["PartitionName"].split()[0] == worker["SEMCOAT_SLURM_PARTITION"]
    # job states: the controller writes the jobcomp log into a volume the login node reads
    jobcomp = conf["JobCompLoc"]
    assert jobcomp == worker["SEMCOAT_SLURM_JOBCOMP_LOG"]
    shared = [(t, s) for t, s in mounts("slurmctld").items() if jobcomp.startswith(t + "/")]
    assert shared and shared[0] in mounts("login").items(), "the jobcomp log is not on a volume the login node has"
    # batches: one home shared by the login and compute nodes
    home = worker["SEMCOAT_CLUSTER_HOME"]
    assert mounts("login").get(home) == mounts("slurmd").get(home) is not None
    # SSH: the login service, its port, its user, the worker's secrets
    assert worker["SEMCOAT_SSH_HOST"] == SERVICES["login"]["hostname"] == "login"
    entrypoint = (DOCKER / "cluster-entrypoint.sh").read_text()
    assert f"\nPort {worker['SEMCOAT_SSH_PORT']}\n" in entrypoint
    assert f"CLUSTER_USER=${{SEMCOAT_CLUSTER_USER:-{worker['SEMCOAT_SSH_USER']}}}" in entrypoint
    assert f"/home/{worker['SEMCOAT_SSH_USER']}" == home
    dockerfile = (DOCKER / "semcoat.Dockerfile").read_text()
    assert f"useradd --create-home --shell /bin/bash {worker['SEMCOAT_SSH_USER']}" in dockerfile
    for setting, secret in (("SEMCOAT_SSH_KEY", "ssh_key"), ("SEMCOAT_SSH_KNOWN_HOSTS", "ssh_known_hosts")):
        assert worker[setting] == f"/run/secrets/{secret}" and secret in SERVICES["worker"]["secrets"]
    # the semcoat jobs run (render, train): the worker target's environment, under the test cluster's image
    stages = df.stages(DOCKER / "semcoat.Dockerfile")
    assert [s.name for s in df.chain(stages, "test-cluster")][-2] == "worker"
    assert re.search(r"ARG WORKER_EXTRAS=service,render,train\n", (DOCKER / "semcoat.Dockerfile").read_text())
    assert worker["SEMCOAT_CLUSTER_SEMCOAT"] == "/opt/semcoat/.venv/bin/semcoat"
    for name in ("worker", "slurmd"):  # they train: DataLoader workers share memory beyond Docker's 64 MB
        assert SERVICES[name].get("shm_size") == "1gb", name


def test_each_cluster_node_gets_the_secrets_its_role_reads() -> None:
    entrypoint = (DOCKER / "cluster-entrypoint.sh").read_text()
    read = set(re.findall(r'secret (\w+)\)', entrypoint))
    assert read == {"munge_key", "cluster_host_key", "cluster_authorized_key"}
    for name in CLUSTER_SERVICES:
        assert SERVICES[name]["command"] == [name], name  # the role the entrypoint takes
        assert "munge_key" in SERVICES[name]["secrets"]
    assert set(SERVICES["login"]["secrets"]) == read
    assert COMPOSE["secrets"]["cluster_authorized_key"]["file"] == "secrets/ssh_key.pub"
    assert COMPOSE["secrets"]["ssh_key"]["file"] == "secrets/ssh_key"  # the pair: the worker holds the private half


# -- the health checks' commands, run against the loopback stack (the same Debian packages) ------------------------
def _swap(command: str, old: str, new: str) -> str:
    assert old in command, f"the health check changed: {old!r} not in {command!r}; update this test"
    return command.replace(old, new)


@pytest.mark.integration
def test_cluster_and_redis_health_checks_pass_on_the_loopback_stack(stack_env: dict[str, str]) -> None:
    redis_port = stack_env["SEMCOAT_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    commands: dict[str, Any] = {
        "slurmctld": _healthcheck("slurmctld")[1:],
        "slurmd": ["sh", "-c", _swap(_healthcheck("slurmd")[1], "-n c1 ", "-n localhost ")],
        "login": ["sh", "-c", _swap(_healthcheck("login")[1], "-p 22 ", f"-p {stack_env['SEMCOAT_SSH_PORT']} ")],
        "redis": ["sh", "-c", _swap(_healthcheck("redis")[1], "redis-cli ping", f"redis-cli -p {redis_port} ping")],
    }
    assert _healthcheck("slurmctld")[0] == "CMD" and all(_healthcheck(n)[0] == "CMD-SHELL" for n in commands
                                                          if n != "slurmctld")
    for name, argv in commands.items():
        ran = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert ran.returncode == 0, f"{name}: {argv}: {ran.stdout}{ran.stderr}"
    unanswered = subprocess.run(["sh", "-c", _swap(_healthcheck("login")[1], "-p 22 ", "-p 9 ")],
                                capture_output=True, text=True, timeout=30)
    assert unanswered.returncode != 0  # no sshd there: the check fails
