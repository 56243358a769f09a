"""envs/*.yaml parse, pin every package exactly as pyproject.toml does, every rule names an existing env, each env
holds exactly what its rules import (followed through the `smart` modules, parsed, not solved) and installs `smart`."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

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
        if req.startswith("--extra-index-url "):  # PyTorch's CPU wheel index (eval.yaml)
            continue
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
    # a local version label (+cpu: PyTorch's CPU wheel) is the same release
    mismatched = {n: (v, reference[n]) for n, v in pins.items() if v.partition("+")[0] != reference[n]}
    assert not mismatched, f"{path.name} disagrees with pyproject.toml (env, pyproject): {mismatched}"
    assert pins.get("torch", "2.13.0").partition("+")[0] == reference["torch"] == "2.13.0"


def test_every_rule_uses_an_existing_env():
    text = "\n".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    n_rules = len(re.findall(r"^rule \w+:", text, flags=re.M))
    envs = re.findall(r'^\s+conda:\s*\n\s+"\.\./envs/([\w-]+\.yaml)"', text, flags=re.M)
    assert len(envs) == n_rules > 10
    assert {REPO / "envs" / e for e in envs} <= set(ENV_FILES)


# ---- what each rule imports ------------------------------------------------------------------------------------
# Imports no `import` statement shows: torch.utils.tensorboard needs the tensorboard package, MONAI's Swin needs
# einops (an optional MONAI dependency).
IMPLIED = {"torch.utils.tensorboard": "tensorboard", "monai.networks.nets.swin_unetr": "einops"}
LOCAL = ("smart", "workflow_scripts")
# Probed with find_spec and replaced by a shim when absent (smart.data.pylidc_compat): not a requirement.
PROBED = {"pkg_resources"}


def _source(module: str) -> Path | None:
    base = REPO / Path(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imports(module: str) -> set[str]:
    """Every module ``module`` may import: import statements anywhere (lazy ones in functions too) and string
    arguments of ``importlib.import_module`` / ``importlib.util.find_spec``."""
    path = _source(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if _source(f"{base}.{a.name}")}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "find_spec") and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value))
    return found


def third_party_imports(module: str) -> set[str]:
    """Dotted third-party imports of ``module`` and of every local module it reaches (transitively)."""
    seen, todo, external = set(), [module], set()
    while todo:
        mod = todo.pop()
        if mod in seen or _source(mod) is None:
            continue
        seen.add(mod)
        parts = mod.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b
        for name in _imports(mod):
            top = name.split(".")[0]
            if top in LOCAL:
                todo.append(name if _source(name) else name.rpartition(".")[0])
            elif top not in sys.stdlib_module_names and top != "__future__" and top not in PROBED:
                external.add(name)
    return external


@functools.lru_cache(maxsize=1)
def _owners() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions(imports: set[str]) -> set[str]:
    """Import names -> normalised PyPI distribution names (from the installed packages' metadata)."""
    owners = _owners()
    out = set()
    for name in imports:
        top = name.split(".")[0]
        assert top in owners, f"import {name!r}: no installed distribution provides {top!r}"
        out |= {_norm(d) for d in owners[top]}
        out |= {_norm(dist) for prefix, dist in IMPLIED.items() if name == prefix or name.startswith(prefix + ".")}
    return out


def rule_commands() -> dict[str, tuple[str, list[str]]]:
    """{rule: (env file, [python module each `python -m` of its shell runs])}, parsed from rules/*.smk (a shell built
    by a helper of common.smk is read from the helper's body)."""
    from smart.cli import COMMANDS

    texts = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "rules").glob("*.smk")}
    helpers = "\n".join(texts.values())
    rules = {}
    for text in texts.values():
        for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", text, flags=re.M | re.S):
            env = re.search(r'conda:\s*\n\s+"\.\./envs/([\w-]+\.yaml)"', body).group(1)
            shell = body[body.index("shell:"):]
            for helper in re.findall(r"(\w+)\(", shell):
                match = re.search(rf"^def {helper}\(.*?(?=^\S)", helpers, flags=re.M | re.S)
                shell += match.group(0) if match else ""
            modules = [COMMANDS[step][0] if mod == "smart" else mod
                       for mod, step in re.findall(r"-m (smart|workflow_scripts\.\w+)\b(?: ([a-z][\w-]*))?", shell)]
            assert modules, f"rule {name}: no `python -m smart <step>` / `-m workflow_scripts.<x>` in its shell"
            rules[name] = (env, modules)
    return rules


@functools.lru_cache(maxsize=1)
def needs_by_env() -> dict[str, set[str]]:
    needs: dict[str, set[str]] = {}
    for env, modules in rule_commands().values():
        for module in modules:
            needs.setdefault(env, set()).update(distributions(third_party_imports(module)))
    return needs


def test_rule_commands_are_found():
    rules = rule_commands()
    assert rules["pretrain"] == ("train.yaml", ["smart.commands.pretrain"])
    assert rules["synth_ct"] == ("data.yaml", ["smart.commands.synth"])          # via synth_command() in common.smk
    assert rules["plan_json"] == ("eval.yaml", ["workflow_scripts.write_plan"])
    assert "torch" in distributions(third_party_imports("smart.commands.pretrain"))
    assert {"tensorboard", "einops"} <= distributions(third_party_imports("smart.commands.pretrain"))
    assert "pylidc" in distributions(third_party_imports("smart.commands.lidc_nodules"))  # found by find_spec


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_holds_exactly_what_its_rules_import(path):
    needed = needs_by_env().get(path.name, set())
    pinned = set(env_pins(path))
    assert not needed - pinned, f"{path.name} lacks packages its rules import: {sorted(needed - pinned)}"
    assert not pinned - needed, f"{path.name} pins packages none of its rules imports: {sorted(pinned - needed)}"


def test_data_env_has_no_torch_and_eval_env_the_cpu_wheel():
    assert "torch" not in env_pins(REPO / "envs/data.yaml")
    evaluation = yaml.safe_load((REPO / "envs/eval.yaml").read_text())["dependencies"][-1]["pip"]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in evaluation and "torch==2.13.0+cpu" in evaluation
    assert "gpu" not in "".join((REPO / "rules" / f).read_text() for f in ("evaluate.smk", "report.smk"))


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_installs_the_package_from_the_workflow_repository(path):
    """Snakemake runs <env>.post-deploy.sh inside the env it creates from <env>.yaml; it installs `smart` (editable,
    no deps) from SMART_REPO, which the Snakefile sets to its own folder."""
    deploy = path.with_name(path.stem + ".post-deploy.sh")
    assert deploy.is_file(), f"{deploy.name} missing"
    script = deploy.read_text()
    assert re.search(r'^python -m pip install --no-deps --no-build-isolation -e "\$\{SMART_REPO:-\.\}"$', script, re.M)
    assert any(str(d).startswith("setuptools") for d in yaml.safe_load(path.read_text())["dependencies"])
    assert "os.environ.update(SMART_REPO=workflow.basedir)" in (REPO / "Snakefile").read_text()


def test_requires_python_matches_the_env_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pythons = {str(d) for p in ENV_FILES for d in yaml.safe_load(p.read_text())["dependencies"]
               if str(d).startswith("python=")}
    assert pythons == {"python=3.11"} and project["requires-python"] == ">=3.11"
