"""Config layering and the checks that run before any job (issue 11): `--configfile X` gets exactly X on top of the
schema defaults, nested `--config` values are typed like a config file, resources come from one block per rule
group, and bad input (a key for the wrong step, `nodes` without GPUs, a placeholder path or SLURM setting) fails
with one clear line before anything runs."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from test_dryrun import dry_run, paper_overlay
from workflow_workspace import REPO, load_yaml, run_snakemake

PAPER = load_yaml(REPO / "config/paper.yaml")
DEMO = load_yaml(REPO / "config/config.yaml")


def paper_with(tmp_path: Path, **changes) -> Path:
    """config/paper.yaml with its placeholder data paths replaced (paper_overlay) and top-level ``changes``."""
    cfg = copy.deepcopy(PAPER)
    cfg.update(changes)
    overlay = load_yaml(paper_overlay(tmp_path))
    cfg["data"] = overlay["data"]
    cfg["segmentation"] = {**cfg["segmentation"], **overlay.get("segmentation", {})}
    cfg["tasks"] = {name: {**spec, **overlay["tasks"].get(name, {})} for name, spec in cfg["tasks"].items()}
    path = tmp_path / "paper_site.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def shell_lines(output: str, needle: str) -> list[str]:
    return [line for line in output.splitlines() if needle in line]


def test_one_variant_paper_config_plans_one_pretraining_and_no_demo_setting(demo_workspace, tmp_path):
    one = paper_with(tmp_path, variants={"smart": PAPER["variants"]["smart"]}, ablations={},
                     segmentation={**PAPER["segmentation"], "variants": ["smart"]})
    proc = run_snakemake(demo_workspace, "-n", "-p", "--configfile", str(one), timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert len(shell_lines(out, "-m smart pretrain")) == 1
    assert re.search(r"^pretrain\s+1$", out, re.M)
    finetunes = shell_lines(out, "-m smart finetune")
    # 2 tasks x 3 fractions x 3 heads x 3 folds, every one with the paper's settings and none of the demo's
    assert len(finetunes) == 2 * 3 * 3 * 3
    for line in finetunes + shell_lines(out, "-m smart linear-probe"):
        assert "--set batch_size=40 --set lr=0.0002" in line
        assert "augment" not in line and "probe_max_iter" not in line and "epochs=1 " not in line
    # Sec. IV-B: 1,000 LIDC test nodules + 3 folds; treatment response 3-fold CV only (tasks.<name>.test_size)
    assert len(shell_lines(out, "--out results/preprocess/lidc/splits.json --test-size 1000 --folds 3")) == 1
    assert len(shell_lines(out, "--out results/preprocess/response/splits.json --test-size 0 --folds 3")) == 1
    # no demo variant, ablation target or synthetic data reaches the plan; plan.json holds the one variant (its
    # shell line also names the study's default arms, config/schema.yaml study.methods, so it is checked apart)
    (plan_line,) = shell_lines(out, "-m workflow_scripts.write_plan")
    plan = json.loads(shlex.split(plan_line)[shlex.split(plan_line).index("--plan") + 1])
    assert list(plan["variants"]) == ["smart"] and list(plan["arch"]) == ["smart"]
    jobs = "\n".join(line for line in out.splitlines() if line != plan_line)
    for demo_only in ("smart_no_nt", "smit", "scratch", "synth_"):
        assert demo_only not in jobs
    assert "ablation_no_nt" not in run_snakemake(demo_workspace, "--list-target-rules", "--configfile", str(one),
                                                 timeout=300).stdout


def test_demo_config_applies_only_without_configfile(demo_workspace, tmp_path):
    minimal = tmp_path / "minimal.yaml"
    minimal.write_text(yaml.safe_dump({"variants": {"solo": {"method": "smit", "sa": False}}}))
    counts = dry_run(demo_workspace, "pretrain_all", configfiles=(str(minimal),))
    assert counts["pretrain"] == 1
    proc = run_snakemake(demo_workspace, "-n", "-p", "results/pretrain/solo/encoder.pt", "--configfile", str(minimal),
                         timeout=300)
    # schema defaults (preset tiny, no max_steps), not the demo's max_steps 100
    assert "--method smit --preset tiny --manifest" in proc.stdout
    demo = run_snakemake(demo_workspace, "-n", "-p", "results/pretrain/smart/encoder.pt", timeout=300)
    assert f"--max-steps {DEMO['pretrain']['max_steps']}" in demo.stdout


# One nested `--config` per section; each must validate (values are YAML-typed like a config file).
NESTED = {
    "synthetic": "{seed: 3, counts: {ct: 2}}",
    "data": "{lidc_annotations: false}",
    "preprocess": "{spacing: 1.5}",
    "splits": "{folds: 4, test_size: 0.3}",
    "pretrain": "{max_steps: 50, set: {optim.lr: 1e-3}}",
    "variants": "{smart: {method: smart, set: {noisy_teacher.drop_ratio: 0.5}}}",
    "ablations": "{solo: [smart]}",
    "finetune": "{folds: 1, set: {epochs: 2, augment: true}}",
    "probe": "{enabled: false}",
    "cluster": "{enabled: false}",
    "evaluate": "{random_baseline: false}",
    "resources": "{embed: {gpu: 1, runtime: 45}}",
    "segmentation": "{enabled: false, count: 4}",
    "clinical": "{consensus_margin: 3}",
    "tasks": "{lidc: {fractions: [0.5, 1.0], test_size: 0.3, set: {epochs: 2}}}",
    "table_tasks": "{VI: response}",
    "study": "{seeds: [0], steps: 20}",
}


def test_every_schema_section_has_a_nested_override_case():
    assert set(NESTED) == set(load_yaml(REPO / "config/schema.yaml")["properties"])


@pytest.mark.parametrize("section", sorted(NESTED))
def test_nested_command_line_config_validates(demo_workspace, section):
    proc = run_snakemake(demo_workspace, "-n", "-p", "results/plan.json", "--config",
                         f"{section}={NESTED[section]}", timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_nested_command_line_values_reach_the_commands(demo_workspace):
    proc = run_snakemake(demo_workspace, "-n", "-p", "results/pretrain/smart/encoder.pt", "--config",
                         "pretrain={max_steps: 50, set: {optim.lr: 1e-3}}", "resources={pretrain: {runtime: 45}}",
                         timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--max-steps 50 --set optim.lr=1e-3 --manifest" in proc.stdout
    # a partial block keeps the group's other defaults (schema: pretrain cpus_per_task 2, mem_mb 4000)
    assert re.search(r"resources: .*runtime=45, cpus_per_task=2, gpu=0, mem_mb=4000", proc.stdout)


def test_resources_come_from_the_rule_groups(demo_workspace, tmp_path):
    paper = paper_with(tmp_path)
    proc = run_snakemake(demo_workspace, "-n", "results/cluster/smart/features.npz",
                         "results/probe/lidc/smart/1.0/fold_0/metrics.json", "--configfile", str(paper), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = PAPER["resources"]
    for rule, group in (("embed", "embed"), ("linear_probe", "probe"), ("pretrain", "pretrain")):
        block = proc.stdout.split(f"rule {rule}:", 1)[1].split("\n\n", 1)[0]
        assert f"runtime={res[group]['runtime']}," in block, block
        assert f"mem_mb={res[group]['mem_mb']}," in block, block
        assert f"cpus_per_task={res[group]['cpus_per_task']}," in block, block
    assert f"gpu={res['embed']['gpu']}" in proc.stdout.split("rule embed:", 1)[1].split("\n\n", 1)[0]


def test_multi_node_pretraining_launches_srun_torchrun(demo_workspace, tmp_path):
    paper = paper_with(tmp_path)
    proc = run_snakemake(demo_workspace, "-n", "-p", "results/pretrain/smart/encoder.pt", "--configfile", str(paper),
                         "--config", "resources={pretrain: {nodes: 2, gpu: 4, gpu_model: a100}}", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = shell_lines(proc.stdout, "-m smart pretrain")
    assert ("srun --ntasks 2 --kill-on-bad-exit=1 torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d "
            "--rdzv_endpoint \"$(hostname):") in line, line
    assert "--standalone" not in line
    block = proc.stdout.split("rule pretrain:", 1)[1].split("\n\n", 1)[0]
    for resource in ("nodes=2", "tasks=2", "mpi=srun", "slurm_extra=--gpus-per-node=a100:4"):
        assert resource in block, block
    assert "gpu=" not in block.replace("gpus-per-node", "")  # --gpus would count GPUs per job, not per node


@pytest.mark.parametrize("overrides, needle", [
    (("resources={pretrain: {nodes: 2, gpu: 0}}",),
     "config resources.pretrain.nodes=2 needs resources.pretrain.gpu >= 1"),
    (("resources={embed: {nodes: 2}}",), "config resources.embed.nodes=2: only resources.pretrain can span nodes"),
    (("resources={embd: {gpu: 1}}",), "unknown config key 'resources.embd'"),
    (("finetune={set: {loss.aitd: 0}}",), "config finetune.set: 'loss.aitd' is a pretraining key"),
    (("finetune={set: {optim.lrr: 1e-4}}",),  # optim.lr is accepted (tests/workflow/test_plan_resolve.py)
     "unknown downstream config key 'optim.lrr' in --set (did you mean 'optim.lr'?)"),
    (("study={probe_set: {probe_maxiter: 500}}",),  # an open mapping to the schema: the package's loader names it
     "config study.probe_set (probe of study arm 'smart'): unknown downstream config key 'probe_maxiter' in --set "
     "(did you mean 'probe_max_iter'?)"),
    (("pretrain={set: {epochs: 5}}",), "config pretrain.set: 'epochs' is not a pretraining key"),
    (("variants={smart: {method: smart, set: {batch_size: 2}}}",), "config variants.smart.set: 'batch_size' is not"),
    (("pretrain={resources: {gpu: 1}}",), "config pretrain.resources: resources now live in one block per rule group"),
    (("data={raters: {source: csv, csv: /data/REPLACE_ME/raters.csv}}",),
     "config data.raters.csv = '/data/REPLACE_ME/raters.csv' is a placeholder"),
])
def test_bad_config_fails_before_any_job(demo_workspace, overrides, needle):
    proc = run_snakemake(demo_workspace, "-n", "results/plan.json", "--config", *overrides, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert needle in out, out[-3000:]
    assert "Job stats" not in out


def test_paper_placeholders_name_the_key(demo_workspace):
    proc = run_snakemake(demo_workspace, "-n", "--configfile", "config/paper.yaml", timeout=300)
    assert proc.returncode != 0
    assert ("config data.ct.paths[0] = '/data/REPLACE_ME/pretrain_ct/lung' is a placeholder"
            in proc.stdout + proc.stderr)


def test_slurm_profile_refuses_to_submit_with_placeholders(demo_workspace):
    """The shipped profile's partition/account are REPLACE_ME: a real (non-dry) run stops before submitting."""
    proc = run_snakemake(demo_workspace, "--profile", "slurm", "results/plan.json", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "resource slurm_partition='REPLACE_ME_cpu_partition' of rule plan_json is a placeholder; " in out, out
    assert "submitted with SLURM jobid" not in out
    assert not (demo_workspace / "results/plan.json").exists()
