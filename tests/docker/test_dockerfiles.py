"""docker/semcoat.Dockerfile, checked without a Docker engine (none runs on these machines): its stages and what
they copy, that each image is set up by the scripts the test suite runs, runs as an unprivileged user and holds no
secret, and that the commands it starts exist. Its RUN steps are checked as the shell scripts they are."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.docker import dockerfile as df

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "semcoat.Dockerfile"
STAGES = df.stages(DOCKERFILE)
TARGETS = ("api", "worker", "render-node", "trainer", "test-cluster")
# The test cluster's sshd (privilege separation) and slurmd (starts jobs as the cluster user) must run as root; it is
# a stand-in for a real cluster, never part of a deployment.
ROOT_TARGETS = {"test-cluster"}
IGNORE = df.dockerignore((REPO / ".dockerignore").read_text())
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|PRIVATE|(^|_)KEY($|_)", re.IGNORECASE)
SECRET_FILE = re.compile(r"key|pem|token|secret|id_rsa|id_ed25519|known_hosts", re.IGNORECASE)
SCRIPT_PATH = re.compile(r"(?:scripts|docker)/[\w.-]+\.(?:sh|py)")


def _extras(pyproject: Path = REPO / "pyproject.toml") -> set[str]:
    return set(tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"])


def _run_text(target: str) -> str:
    return " ; ".join(i.args for stage in df.chain(STAGES, target) for i in stage.of("RUN"))


def _arg_defaults(target: str) -> dict[str, str]:
    """The build arguments a target's last stage sees, with their defaults (a global default where it names one)."""
    globals_ = df.global_args(DOCKERFILE)
    defaults: dict[str, str] = {}
    for instruction in df.chain(STAGES, target)[-1].of("ARG"):
        for name, value in df.assignments(instruction).items():
            defaults[name] = value if "=" in instruction.args else globals_.get(name, "")
    return defaults


def _setup_extras(target: str) -> set[str]:
    """The extras a target's own stage gives scripts/setup.sh (build arguments at their defaults)."""
    runs = [i.args for i in df.chain(STAGES, target)[-1].of("RUN") if "scripts/setup.sh" in i.args]
    assert len(runs) == 1, f"{target}: set up by scripts/setup.sh once, found {runs}"
    value = re.search(r'SEMCOAT_EXTRAS=("[^"]*"|\S+)', runs[0])
    assert value, f"{target}: no SEMCOAT_EXTRAS for setup.sh"
    text = value.group(1).strip('"')
    for name, default in _arg_defaults(target).items():
        text = text.replace(f"${name}", default).replace(f"${{{name}}}", default)
    return {e for e in text.split(",") if e}


def _repo_path(placed: dict[str, str], image_path: str) -> str | None:
    """The repository path COPY put at ``image_path`` (a file, or one inside a copied folder), or None."""
    for dest, source in sorted(placed.items(), key=lambda item: -len(item[0])):
        if image_path == dest or image_path.startswith(dest + "/"):
            return source + image_path[len(dest):]
    return None


# -- the .dockerignore reader itself (a wrong one would pass everything) -------------------------------------------
def test_dockerignore_reader_follows_dockers_rules() -> None:
    rules = df.dockerignore("docs\n**/__pycache__\ndocker/secrets\n*.key\n!keep.key\n/build\n")
    assert df.excluded(rules, "docs/example_report.png")
    assert df.excluded(rules, "render_service/api/__pycache__/app.cpython-311.pyc")
    assert df.excluded(rules, "docker/secrets/ssh_key")
    assert df.excluded(rules, "munge.key") and not df.excluded(rules, "keep.key")
    assert df.excluded(rules, "build/lib/x.py")
    assert not df.excluded(rules, "semcoat/spec.py")
    assert not df.excluded(rules, "docker/healthcheck.py")
    assert not df.excluded(rules, "sub/munge.key")  # '*' does not cross folders


# -- stages --------------------------------------------------------------------------------------------------------
def test_every_image_is_a_target() -> None:
    assert set(TARGETS) <= set(STAGES), sorted(STAGES)


def test_bases_are_debian12_python311_or_earlier_stages() -> None:
    seen: set[str] = set()
    for name, stage in STAGES.items():
        assert stage.base in seen or (stage.base.startswith("python:3.11-") and "bookworm" in stage.base), \
            f"stage {name} is built FROM {stage.base}: not python:3.11 on Debian 12 nor an earlier stage"
        seen.add(name)


@pytest.mark.parametrize("target", TARGETS)
def test_runs_as_an_unprivileged_user_unless_a_test_cluster_daemon(target: str) -> None:
    user = df.last(STAGES, target, "USER")
    name = user.args if user is not None else "root"
    if target in ROOT_TARGETS:
        assert name == "root", f"{target}: its daemons start as root (USER {name})"
    else:
        assert name not in ("root", "0") and not name.startswith("0:"), f"{target} runs as {name}"
        created = " ".join(i.args for i in STAGES["source"].of("RUN"))
        assert f"useradd --uid 10001 --gid {name}" in created, f"{target}: user {name} is not the one made"


# -- what goes in --------------------------------------------------------------------------------------------------
def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    for name, stage in STAGES.items():
        for instruction in stage.of("COPY"):
            *sources, _dest = instruction.words()
            for source in sources:
                assert (REPO / source).exists(), f"{name}: COPY {source}: no such path in the repository"
                assert not df.excluded(IGNORE, source), f"{name}: COPY {source} is excluded by .dockerignore"


def test_nothing_secret_is_copied_or_in_the_build_context() -> None:
    for name, stage in STAGES.items():
        for instruction in stage.of("COPY") + stage.of("ADD"):
            for source in instruction.words()[:-1]:
                assert source not in (".", "docker", "docker/") and not SECRET_FILE.search(Path(source).name), \
                    f"{name}: {instruction.keyword} {source} could bring a secret in"
    for path in ("docker/secrets/ssh_key", "docker/secrets/munge.key", "docker/secrets/ssh_host_ed25519_key",
                 "docker/.env", "id_ed25519", "run/token"):
        assert df.excluded(IGNORE, path), f".dockerignore lets {path} into a build context"


def test_no_secret_in_env_or_arg() -> None:
    for name, stage in STAGES.items():
        for instruction in stage.of("ENV") + stage.of("ARG"):
            for key, value in df.assignments(instruction).items():
                assert not (SECRET_NAME.search(key) and value), f"{name}: {instruction.keyword} {key}={value}"


def test_the_test_cluster_drops_the_keys_its_packages_make() -> None:
    runs = " ".join(i.args for i in STAGES["test-cluster"].of("RUN"))
    assert "scripts/stack.sh packages" in runs
    assert "rm -f /etc/munge/munge.key /etc/ssh/ssh_host_*" in runs


# -- how it is set up: the scripts the test suite runs -------------------------------------------------------------
EXTRAS = {"api": {"service"}, "worker": {"service", "render", "train"}, "render-node": {"render"},
          "trainer": {"train"}}


@pytest.mark.parametrize("target", sorted(EXTRAS))
def test_set_up_by_setup_sh_with_the_extras_it_needs(target: str) -> None:
    extras = _setup_extras(target)
    assert extras <= _extras() - {"all", "dev"}, f"{target}: extras {extras} (known: {sorted(_extras())})"
    assert extras == EXTRAS[target]


@pytest.mark.parametrize("target", TARGETS)
def test_scripts_a_run_step_calls_are_in_the_image_and_parse(target: str) -> None:
    placed = df.image_files(STAGES, target)
    called = set(SCRIPT_PATH.findall(_run_text(target))) | {
        w for w in df.command(STAGES, target) if SCRIPT_PATH.search(w)}
    assert called, f"{target} calls none of the project's scripts"
    for script in called:
        image_path = script if script.startswith("/") else f"/opt/semcoat/{script}"
        source = _repo_path(placed, image_path)
        assert source is not None, f"{target}: {script} is called but not copied into the image"
        assert (REPO / source).is_file() and not df.excluded(IGNORE, source), f"{target}: {source}"
        if source.endswith(".sh"):
            checked = subprocess.run(["bash", "-n", str(REPO / source)], capture_output=True, text=True)
            assert checked.returncode == 0, f"{source}: {checked.stderr}"
        for used in set(re.findall(r"scripts/[\w.-]+\.(?:sh|py)", (REPO / source).read_text())):
            assert _repo_path(placed, f"/opt/semcoat/{used}"), f"{source} uses {used}, which is not in the image"


def test_every_run_step_is_valid_posix_shell() -> None:
    # Docker runs a shell-form RUN with /bin/sh -c (dash on Debian), not bash
    for name, stage in STAGES.items():
        for instruction in stage.of("RUN"):
            checked = subprocess.run(["sh", "-n", "-c", instruction.args], capture_output=True, text=True)
            assert checked.returncode == 0, f"{name}: RUN {instruction.args}: {checked.stderr}"


@pytest.mark.parametrize("target", sorted(t for t in EXTRAS if "train" in EXTRAS[t]))
def test_torch_is_the_pinned_cpu_build_unless_asked(target: str) -> None:
    # without them setup.sh's `torch==2.13.0` would take PyPI's wheel, a CUDA build of several GB
    pinned = [r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
              ["train"] if re.match(r"torch\b", r)]
    assert pinned == ["torch==2.13.0"]
    args = _arg_defaults(target)
    assert args["TORCH"] == "torch==2.13.0+cpu" and args["TORCH_INDEX_URL"].endswith("/whl/cpu"), args
    run = " ".join(i.args for i in STAGES[target].of("RUN"))
    assert 'SEMCOAT_TORCH="$TORCH"' in run and 'SEMCOAT_TORCH_INDEX_URL="$TORCH_INDEX_URL"' in run
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert '"${SEMCOAT_TORCH:-torch==2.13.0}"' in setup and "SEMCOAT_TORCH_INDEX_URL" in setup


# -- what it starts ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ("api", "worker", "render-node", "trainer"))
def test_the_semcoat_command_an_image_starts_exists(target: str) -> None:
    argv = df.command(STAGES, target)
    assert argv[0] == "semcoat" and len(argv) > 1, argv
    assert argv[1] == {"api": "serve", "worker": "worker", "render-node": "render", "trainer": "train"}[target]
    accepted, output = df.semcoat_accepts(argv[1:])
    assert accepted, f"{target}: semcoat {' '.join(argv[1:])}: {output}"


def test_the_test_cluster_entrypoint_handles_every_role() -> None:
    argv = df.command(STAGES, "test-cluster")
    assert argv == ["bash", "/opt/semcoat/docker/cluster-entrypoint.sh"]
    script = REPO / "docker" / "cluster-entrypoint.sh"
    refused = subprocess.run(["bash", str(script), "bogus"], capture_output=True, text=True, timeout=10)
    assert refused.returncode == 2 and "usage" in refused.stderr  # checked before it touches anything
    text = script.read_text()
    for role in ("slurmctld", "slurmd", "login"):
        assert re.search(rf"^\s+{role}\)$", text, re.MULTILINE), f"no branch for {role}"
