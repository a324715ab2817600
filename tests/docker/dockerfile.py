"""What the static checks of docker/ need to read a Dockerfile and a .dockerignore without a Docker engine: the
stages with their instructions (continuations joined, comment lines dropped, as Docker does), and the exclusion
rule of .dockerignore (Go filepath.Match with ``**`` and ``!`` exceptions; a path is excluded when it or a folder
above it matches, the last matching pattern deciding)."""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``keyword`` upper-case, ``flags`` (``--mount=...``), ``args`` (the rest, as written)."""

    keyword: str
    flags: tuple[str, ...]
    args: str

    def words(self) -> list[str]:
        """The arguments as words: JSON (exec) form as given, shell form split as a shell would."""
        if self.args.startswith("["):
            words: list[str] = json.loads(self.args)
            return words
        return shlex.split(self.args)


@dataclass
class Stage:
    """A build stage: ``FROM base [AS name]`` and what follows until the next FROM."""

    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        """This stage's instructions of one kind, in order."""
        return [i for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile's text."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line:
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        flags = []
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        out.append(Instruction(keyword.upper(), tuple(flags), rest))
    return out


def stages(path: Path) -> dict[str, Stage]:
    """The stages of a Dockerfile by name (unnamed stages by their index), in order."""
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for instruction in instructions(path.read_text()):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(found))
            current = found[name] = Stage(name, words[0])
        elif current is not None:
            current.instructions.append(instruction)
    return found


def global_args(path: Path) -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults: a stage that declares ``ARG NAME`` gets them."""
    found: dict[str, str] = {}
    for instruction in instructions(path.read_text()):
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            found.update(assignments(instruction))
    return found


def chain(all_stages: dict[str, Stage], name: str) -> list[Stage]:
    """A stage and the stages it is built on, the first base first."""
    out: list[Stage] = []
    stage: Stage | None = all_stages[name]
    while stage is not None:
        out.insert(0, stage)
        stage = all_stages.get(stage.base)
    return out


def last(all_stages: dict[str, Stage], name: str, keyword: str) -> Instruction | None:
    """The instruction of this kind in force at the end of a stage (its own or one inherited from its bases)."""
    found = None
    for stage in chain(all_stages, name):
        for instruction in stage.of(keyword):
            found = instruction
    return found


def command(all_stages: dict[str, Stage], name: str) -> list[str]:
    """ENTRYPOINT + CMD in force for a stage (an ENTRYPOINT set in a stage drops the CMD inherited from below)."""
    entrypoint: list[str] = []
    cmd: list[str] = []
    for stage in chain(all_stages, name):
        for instruction in stage.instructions:
            if instruction.keyword == "ENTRYPOINT":
                entrypoint, cmd = instruction.words(), []
            elif instruction.keyword == "CMD":
                cmd = instruction.words()
    return entrypoint + cmd


def image_files(all_stages: dict[str, Stage], name: str) -> dict[str, str]:
    """Where COPY puts the repository's paths in a stage's image: image path -> repository path."""
    placed: dict[str, str] = {}
    for stage in chain(all_stages, name):
        workdir = "/"
        for instruction in stage.instructions:
            if instruction.keyword == "WORKDIR":
                workdir = posixpath.join(workdir, instruction.args)
            elif instruction.keyword == "COPY" and not any(f.startswith("--from") for f in instruction.flags):
                *sources, dest = instruction.words()
                target = posixpath.normpath(posixpath.join(workdir, dest))
                for source in sources:
                    into = posixpath.join(target, posixpath.basename(source)) if dest.endswith("/") else target
                    placed[into] = posixpath.normpath(source)
    return placed


def assignments(instruction: Instruction) -> dict[str, str]:
    """``NAME=value`` pairs of an ENV or ARG instruction (``ENV NAME value`` too); an ARG without default is ''."""
    words = instruction.words()
    if instruction.keyword == "ENV" and len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    pairs = {}
    for word in words:
        name, _, value = word.partition("=")
        pairs[name] = value
    return pairs


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i:end + 1].replace("[!", "[^"))
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """The patterns of a .dockerignore: (is an exception ``!``, compiled pattern), in order."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def excluded(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Whether .dockerignore ``rules`` leave ``path`` (relative to the context) out of the build context."""
    parts = posixpath.normpath(path).split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negate, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            result = not negate
    return result


def semcoat_accepts(argv: list[str]) -> tuple[bool, str]:
    """Whether ``semcoat ARGV`` names a command with options that exist (checked as ``semcoat ARGV --help``: an
    unknown command or option still fails), and what it printed."""
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    result = CliRunner().invoke(app, [*argv, "--help"])
    return result.exit_code == 0, result.output

