"""Every command of README.md and docs/*.md is run by this test (issue 21 item 4).

The fenced ``bash`` blocks are parsed (tests/workflow/docs_commands.py) and every command must have an entry in
``HOW``; a command added to the docs without one, or an entry whose command left the docs, fails
``test_every_documented_command_has_an_entry``. Snakemake commands run as written plus ``-n`` (a dry run) in a fresh
copy of the workflow, ``--profile slurm`` included; ``config/paper.yaml`` gets the stand-in data files of
``test_dryrun.paper_overlay`` (its data paths are placeholders), ``config/rehearsal.yaml`` the same files at its
``rehearsal_data/`` paths. Each entry states what the plan must hold: the planned target (``snakemake TARGET --configfile
...``: the target comes first, or ``--configfile``/``--forcerun``/``--set-threads`` would take it as one of theirs), and
the job counts the docs quote. The MONAI recipe runs for real on a tiny encoder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from docs_commands import documented_commands, fenced_blocks
from test_dryrun import job_counts, paper_overlay
from workflow_workspace import REPO, load_yaml, make_workspace, snakemake_env


def _key(command: str) -> str:
    return " ".join(shlex.join(shlex.split(command)).split())


@dataclass(frozen=True)
class Dry:
    """``snakemake`` as written plus ``-n``: exit 0 and a plan with these rule counts (``total`` = all jobs); every
    number captured by a ``claims`` regex ``(file, pattern)`` must equal the total."""
    counts: dict = field(default_factory=dict)
    absent: tuple = ()
    claims: tuple = ()
    refused: str = ""          # the command must stop before any job with this text in its output
    conda: bool = False        # needs the conda executable (skipped where it is not installed)


@dataclass(frozen=True)
class Special:
    """Run by a function of this module (name), e.g. a real run on tiny inputs."""
    runner: str


PAPER = load_yaml(REPO / "config/paper.yaml")
PDR = PAPER["ablations"]["pdr"]
DEMO_ALL = 69          # `snakemake -n` of the demo; README and docs/workflow.md quote it as "plans **69 jobs**"
DEMO_CLAIMS = (("README.md", r"plans \*\*(\d+) jobs\*\*"), ("docs/workflow.md", r"plans \*\*(\d+) jobs\*\*"))
STUDY_CLAIMS = (("docs/results_study.md", r"6 default arms: (\d+) jobs"), ("docs/workflow.md", r"(\d+) jobs; sized for"),
                ("docs/results_study.md", r"`snakemake --cores 2 study`, (\d+) jobs"))

HOW: dict[str, object] = {
    # README.md: install + demo, tests
    "bash scripts/install.sh": Special("install_script"),
    "snakemake --cores all": Dry({"all": 1, "total": DEMO_ALL}, claims=DEMO_CLAIMS),
    "python3 -m pytest -m 'not slow' -q": Special("pytest_collect"),
    # README.md: rehearsal
    "python -m smart synth rehearsal --out rehearsal_data": Special("cli_parses"),
    "snakemake --configfile config/rehearsal.yaml --profile slurm rehearsal": Dry({"rehearsal": 1, "pretrain": 1}),
    # README.md: MONAI
    "python -m smart export --encoder results/pretrain/smart/encoder.pt --format monai-ssl --out monai_ssl.pt":
        Special("monai_recipe"),
    # README.md: segmentation
    "snakemake --cores all segmentation": Dry({"segmentation": 1, "segmentation_finetune": 3}),
    "snakemake --configfile config/paper.yaml --profile slurm segmentation":
        Dry({"segmentation": 1, "segmentation_finetune": len(PAPER["segmentation"]["variants"])}, absent=("all",)),
    # README.md + docs/workflow.md: ablations
    "snakemake ablation_no_nt --profile slurm --configfile config/paper.yaml":
        Dry({"ablation_no_nt": 1, "pretrain": 2}, absent=("all",)),
    "snakemake --cores all ablation_no_nt": Dry({"ablation_no_nt": 1, "pretrain": 2}, absent=("all",)),
    "snakemake ablation_pdr --configfile config/paper.yaml --forcerun pretrain":
        Dry({"ablation_pdr": 1, "pretrain": len(PDR)}, absent=("all", "tables")),
    # the CPU study (README.md, docs/workflow.md, docs/results_study.md)
    "OMP_NUM_THREADS=1 snakemake --cores 2 study": Dry({"study": 1, "study_pretrain": 15, "total": 89},
                                                       claims=STUDY_CLAIMS),
    "OMP_NUM_THREADS=1 snakemake study --cores 2 --set-threads study_pretrain=1":
        Dry({"study": 1, "study_pretrain": 15, "total": 89}, claims=STUDY_CLAIMS),
    """OMP_NUM_THREADS=1 snakemake study --cores 2 --set-threads study_pretrain=1 --config 'study={"methods": {"smart_branch": "smart", "smart_top": "smart"}, "sets": {"smart_branch": {"model.sa_placement": "branch"}, "smart_top": {"masking.hints": "top"}}}'""":  # noqa: E501
        Dry({"study": 1, "study_pretrain": 15 + 6, "study_probe": 18 + 6, "total": 89 + 30}),
    """OMP_NUM_THREADS=1 snakemake study --cores 2 --set-threads study_pretrain=1 --config 'study={"methods": {"smart_koleo03": "smart"}, "sets": {"smart_koleo03": {"loss.koleo": 0.3}}}'""":  # noqa: E501
        Dry({"study": 1, "study_pretrain": 15 + 3, "study_probe": 18 + 3, "total": 89 + 15}),
    # docs/workflow.md
    "snakemake --cores all preprocess": Dry({"resample": 1, "splits": 2}, absent=("all", "pretrain")),
    "snakemake --report report.html": Special("report"),
    "snakemake --configfile config/paper.yaml -n": Dry(refused="is a placeholder"),
    "snakemake --configfile config/paper.yaml --profile slurm": Dry({"all": 1, "pretrain": 22}),
    "snakemake --software-deployment-method conda --cores all": Dry({"all": 1, "total": DEMO_ALL}, conda=True),
    "snakemake --software-deployment-method conda --configfile config/paper.yaml --profile slurm":
        Dry({"all": 1, "pretrain": 22}, conda=True),
    "snakemake --software-deployment-method conda --conda-create-envs-only --cores 1": Dry(conda=True),
    "python -m pytest tests/workflow -q -m 'not slow'": Special("pytest_collect"),
    "python -m pytest tests/workflow -q -m slurm": Special("pytest_collect"),
    "python -m pytest tests/workflow -q -m slow": Special("pytest_collect"),
    "python -m smart plan --configfile config/paper.yaml my_paths.yaml --json plan.json": Special("gpu_plan"),
}
HOW = {_key(k): v for k, v in HOW.items()}
DOCUMENTED = {_key(k): files for k, files in documented_commands(REPO).items()}


def test_every_documented_command_has_an_entry():
    missing = sorted(set(DOCUMENTED) - set(HOW))
    stale = sorted(set(HOW) - set(DOCUMENTED))
    assert not missing, f"documented commands without an entry in HOW (add one: how is it run?): {missing}"
    assert not stale, f"entries in HOW whose command is no longer in the docs: {stale}"


def test_command_splitting():
    from docs_commands import shell_commands

    body = "A=1 x --y 'a # b\n c' # note\n\nq && r \\\n  --s  # t\n"
    assert shell_commands(body) == [["A=1", "x", "--y", "a # b\n c"], ["q"], ["r", "--s"]]


# ---------------------------------------------------------------------------------------------- running them
def _env_and_args(words: list[str]) -> tuple[dict[str, str], list[str]]:
    env = snakemake_env()
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def _stand_in_data(workspace: Path, tmp_path: Path, words: list[str]) -> list[str]:
    """Site data for the shipped cluster configs: paper.yaml gets the stand-in overlay after it, rehearsal.yaml finds
    the same files at its relative rehearsal_data/ paths."""
    if "config/paper.yaml" in words:
        at = words.index("config/paper.yaml") + 1
        return words[:at] + [str(paper_overlay(tmp_path))] + words[at:]
    if "config/rehearsal.yaml" in words:
        paper_overlay(tmp_path)
        data, tree = tmp_path / "data", workspace / "rehearsal_data"
        for target, source in {"ct/lung": "lung", "ct/other": "other", "medmnist/organmnist3d_64.npz": "organmnist3d_64.npz",
                               "5R/raters.csv": "raters.csv", "LIDC-IDRI": "LIDC-IDRI",
                               "immunotherapy/cohort.csv": "cohort.csv", "segmentation.csv": "segmentation.csv"}.items():
            (tree / target).parent.mkdir(parents=True, exist_ok=True)
            (tree / target).symlink_to(data / source)
    return words


def _dry(how: Dry, command: str, tmp_path: Path) -> None:
    if how.conda and shutil.which("conda") is None:
        pytest.skip("conda is not installed here; the same plan without conda is checked by the entry above it")
    workspace = make_workspace(tmp_path / "wf")
    env, words = _env_and_args(shlex.split(command))
    assert words[0] == "snakemake"
    if not how.refused:
        words = _stand_in_data(workspace, tmp_path, words)
    args = words[1:] + ([] if "-n" in words else ["-n"])
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workspace, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    if how.refused:
        assert proc.returncode != 0 and how.refused in out and "Job stats" not in proc.stdout, out[-3000:]
        return
    assert proc.returncode == 0, out[-3000:]
    if not how.counts and "Job stats" not in proc.stdout:
        return  # e.g. --conda-create-envs-only: nothing to plan
    counts = job_counts(proc.stdout)
    assert {rule: counts.get(rule) for rule in how.counts} == how.counts, counts
    assert not [rule for rule in how.absent if rule in counts], counts
    for file, pattern in how.claims:
        quoted = [int(n) for n in re.findall(pattern, (REPO / file).read_text(encoding="utf-8"))]
        assert quoted and set(quoted) == {counts["total"]}, (file, pattern, quoted, counts["total"])


def install_script(command: str, tmp_path: Path) -> None:
    # Installing packages is not a test's business (network, and it would change the environment under test): the
    # script must parse, and its last line, the import check it ends with, must pass in this environment.
    script = REPO / "scripts/install.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    check = [line for line in script.read_text().splitlines() if line.startswith("$PY -c")][-1]
    proc = subprocess.run(["bash", "-c", check.replace("$PY", shlex.quote(sys.executable), 1)], cwd=REPO,
                          env=snakemake_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.startswith("smart "), proc.stderr[-2000:]


def pytest_collect(command: str, tmp_path: Path) -> None:
    # The suite itself is CI's job; here the documented selection must collect (a bad marker or path fails).
    words = shlex.split(command)
    start = words.index("pytest") + 1
    proc = subprocess.run([sys.executable, "-m", "pytest", *words[start:], "--collect-only", "-p", "no:cacheprovider"],
                          cwd=REPO, env=snakemake_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"\b[1-9]\d* (tests? )?(collected|selected)", proc.stdout) or re.search(r"^\d+/\d+ tests? collected",
                                                                                             proc.stdout, re.M), proc.stdout[-1000:]


def cli_parses(command: str, tmp_path: Path) -> None:
    # `smart synth rehearsal` writes ~2.9 GB; its --small tree is the slow rehearsal test's fixture
    # (tests/workflow/test_rehearsal.py). Here the documented arguments must parse as written.
    from smart.cli import build_parser

    words = shlex.split(command)
    argv = words[words.index("smart") + 1:]
    args = build_parser(only=argv[0]).parse_args(argv)
    assert (args.command, args.kind, str(args.out)) == ("synth", "rehearsal", "rehearsal_data")


def report(command: str, tmp_path: Path) -> None:
    # The report needs a finished run: the slow demo test runs exactly this command after the demo.
    text = (REPO / "tests/workflow/test_run.py").read_text()
    assert 'run_snakemake(demo_workspace, "--report", "report.html"' in text


def monai_recipe(command: str, tmp_path: Path) -> None:
    """README "Use the weights in MONAI": the export command on a tiny encoder at the demo's path, then the README's
    Python block as written, in the same folder; the network it builds must hold the encoder's weights."""
    import torch

    from smart.config import encoder_config, load_config
    from smart.models.encoder_io import export_encoder
    from smart.models.factory import build_encoder

    encoder = build_encoder({**encoder_config(load_config("smart", "tiny")), "sa_placement": "branch"})
    path = tmp_path / "results/pretrain/smart/encoder.pt"
    path.parent.mkdir(parents=True)
    export_encoder(encoder, path, model_config=encoder.model_config, method="smart", step=1)
    proc = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=tmp_path, env=snakemake_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recipe = [body for lang, body in fenced_blocks((REPO / "README.md").read_text(encoding="utf-8"))
              if lang == "python" and "load_from" in body]
    assert len(recipe) == 1
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(recipe[0], "README.md (MONAI recipe)", "exec"), namespace)
    finally:
        os.chdir(cwd)
    ours = encoder.backbone_state_dict()
    theirs = namespace["model"].swinViT.state_dict()
    assert set(theirs) == set(ours) and all(torch.equal(theirs[k], ours[k]) for k in ours)


def gpu_plan(command: str, tmp_path: Path) -> None:
    """`smart plan` as written, in a copy of the workflow whose `my_paths.yaml` holds the stand-in data paths: exit 0,
    every GPU rule of the paper plan fits its card, and the pretraining count is the paper plan's 22."""
    import json

    workspace = make_workspace(tmp_path / "wf")
    shutil.copy(paper_overlay(tmp_path), workspace / "my_paths.yaml")
    proc = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=workspace, env=snakemake_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    plan = json.loads((workspace / "plan.json").read_text())
    assert plan["rules"]["pretrain"]["jobs"] == len(PAPER["variants"]) - sum(
        v["method"] == "scratch" for v in PAPER["variants"].values())
    assert all(rule["fits"] is True for rule in plan["rules"].values()), plan["rules"]


@pytest.mark.parametrize("command", sorted(HOW))
def test_documented_command(command, tmp_path):
    how = HOW[command]
    if isinstance(how, Dry):
        _dry(how, command, tmp_path)
    else:
        globals()[how.runner](command, tmp_path)
