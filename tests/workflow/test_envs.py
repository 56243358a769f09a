"""envs/*.yaml parse, pin every package exactly as pyproject.toml does, and every rule names an existing env."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from workflow_workspace import REPO

ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = {}
    for req in reqs:
        name, sep, version = req.partition("==")
        assert sep, f"pyproject requirement {req!r} is not pinned"
        pins[_norm(name)] = version.strip()
    return pins


def env_pins(path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pip = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip) == 1 and set(pip[0]) == {"pip"}, f"{path.name}: expected one pip: section"
    pins = {}
    for req in pip[0]["pip"]:
        name, sep, version = req.partition("==")
        assert sep, f"{path.name}: {req!r} is not pinned with =="
        pins[_norm(name)] = version
    return pins


def test_there_are_env_files():
    assert {p.name for p in ENV_FILES} >= {"data.yaml", "train.yaml", "eval.yaml"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_parses_and_agrees_with_pyproject(path):
    env = yaml.safe_load(path.read_text())
    assert env["name"].startswith("smart-")
    assert "conda-forge" in env["channels"]
    assert any(str(d).startswith("python=3.") for d in env["dependencies"])
    pins, reference = env_pins(path), pyproject_pins()
    unknown = sorted(set(pins) - set(reference))
    assert not unknown, f"{path.name} pins packages pyproject.toml does not: {unknown}"
    mismatched = {n: (v, reference[n]) for n, v in pins.items() if v != reference[n]}
    assert not mismatched, f"{path.name} disagrees with pyproject.toml (env, pyproject): {mismatched}"
    assert pins["torch"] == reference["torch"] == "2.13.0"


def test_every_rule_uses_an_existing_env():
    text = "\n".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    n_rules = len(re.findall(r"^rule \w+:", text, flags=re.M))
    envs = re.findall(r'^\s+conda:\s*\n\s+"\.\./envs/([\w-]+\.yaml)"', text, flags=re.M)
    assert len(envs) == n_rules > 10
    assert {REPO / "envs" / e for e in envs} <= set(ENV_FILES)
