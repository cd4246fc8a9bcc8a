"""Readers for the files under deploy/, shared by the tests in this folder (no network, no Docker)."""

from __future__ import annotations

import functools
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

COMPOSE_MAIN = DEPLOY / "docker-compose.yml"
# The services that run this project's images (the others are Redis and SeaweedFS).
RIFE_SERVICES = {"api", "worker", "create-bucket"}
HEALTHCHECK_IN_IMAGE = "/opt/rife/healthcheck.py"


def compose_files() -> list[Path]:
    return sorted(DEPLOY.glob("docker-compose*.yml"))


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load_yaml_documents(path: Path) -> list[Any]:
    """Every non-empty document of a (multi-document) YAML file."""
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


@functools.cache
def compose(path: Path = COMPOSE_MAIN) -> dict[str, Any]:
    (doc,) = load_yaml_documents(path)
    return doc


@functools.cache
def k8s_objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in k8s_files() for doc in load_yaml_documents(path)]


def k8s_find(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        o for _, o in k8s_objects() if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def k8s_one(kind: str, name: str) -> dict[str, Any]:
    found = k8s_find(kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name!r} in deploy/k8s, found {len(found)}"
    return found[0]


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        values[key.strip()] = value
    return values


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ENV, ...
    args: str  # the rest of the logical line, continuation lines joined
    line: int


def dockerfile(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, `\\` continuations joined."""
    out: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, args = pending.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, f"{path.name}: dangling line continuation"
    return out


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form instruction (CMD ["python", ...]), else None."""
    args = args.strip()
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value
    return None


def copy_sources(instruction: Instruction) -> list[str]:
    """Source paths of a COPY/ADD from the build context (none for `--from=` stage copies)."""
    words = exec_form(instruction.args) or shlex.split(instruction.args)
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return []
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1]


def env_instructions(instructions: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                key, sep, value = word.partition("=")
                assert sep, f"ENV {ins.args!r}: use the KEY=VALUE form"
                values[key] = value
    return values


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell line, split at `&&`, `||`, `;` and `|` outside quotes."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|", "&"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def pip_install_requirements(instructions: list[Instruction]) -> list[list[str]]:
    """The arguments of every `pip install` in RUN instructions (one list per pip call)."""
    calls = []
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        for words in shell_commands(ins.args):
            for i in range(len(words) - 1):
                if (
                    words[i] == "pip"
                    and words[i + 1] == "install"
                    or (words[i : i + 4] == ["python", "-m", "pip", "install"])
                ):
                    skip = 2 if words[i] == "pip" else 4
                    calls.append(words[i + skip :])
                    break
    return calls


def requirement_args(args: list[str]) -> list[str]:
    """Requirement words of a pip install call: options and their values dropped."""
    out: list[str] = []
    skip_next = False
    for word in args:
        if skip_next:
            skip_next = False
            continue
        if word in ("--index-url", "-i", "--extra-index-url", "-r", "-c", "--target", "-t"):
            skip_next = True
            continue
        if word.startswith("-"):
            continue
        out.append(word)
    return out


def duration_s(value: str | int | float) -> float:
    """A compose duration (`1h1m`, `90s`, `1m30s`, or seconds as a number) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)
