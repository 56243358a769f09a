"""`snakemake -n` plans every named target with both shipped configs, with the job counts the configs imply."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from workflow_workspace import REPO, TARGETS, load_yaml, run_snakemake


def job_counts(output: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a dry run."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"(\S+)\s+(\d+)", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def dry_run(workdir: Path, *targets: str, configfiles: tuple[str, ...] = ()) -> dict[str, int]:
    # targets first: --configfile takes every following word as a file
    args = [*targets, *(["--configfile", *configfiles] if configfiles else [])]
    proc = run_snakemake(workdir, "-n", *args, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return job_counts(proc.stdout)


# The demo config: variants smart, smit, smart_no_nt (pretrained) + scratch; SA in smart and smart_no_nt;
# lidc fractions [0.5, 1.0], response [1.0]; probe fraction [1.0]; one head per variant; FOLDS as configured.
_DEMO = load_yaml(REPO / "config/config.yaml")
N_VARIANTS, N_PRETRAINED, N_SA = 4, 3, 2
FOLDS = _DEMO["finetune"]["folds"] or _DEMO["splits"]["folds"]
SHARDS = 2  # config/schema.yaml preprocess.shards default
DEMO_EXPECTED = {
    "preprocess": {"synth_ct": 1, "synth_cohort": 2, "resample_shard": SHARDS, "resample": 1, "splits": 2,
                   "lidc_nodules": 1, "total": 8 + SHARDS},
    "pretrain_all": {"pretrain": N_PRETRAINED, "resample_shard": SHARDS, "resample": 1,
                     "total": N_PRETRAINED + 3 + SHARDS},
    "finetune_all": {"finetune": N_VARIANTS * (2 + 1) * FOLDS, "linear_probe": 2 * N_VARIANTS * FOLDS,
                     "pretrain": N_PRETRAINED, "splits": 2},
    "cluster_all": {"embed": N_PRETRAINED, "umap": N_PRETRAINED, "synth_organs": 1},
    "zeroshot_all": {"zeroshot": N_SA + 1, "attention_maps": N_SA, "pretrain": N_SA, "synth_raters": 1,
                     "raters_consensus": 1},
    "tables": {"tables": 1, "plan_json": 1, "finetune": N_VARIANTS * 3 * FOLDS, "zeroshot": 3, "umap": 3},
    # the whole job table of the default target (issue 21: unchanged by moving the plan into smart.workflow)
    "all": {"synth_ct": 1, "synth_cohort": 2, "synth_organs": 1, "synth_raters": 1, "raters_consensus": 1,
            "resample_shard": SHARDS, "resample": 1, "lidc_nodules": 1, "splits": 2, "pretrain": N_PRETRAINED,
            "finetune": N_VARIANTS * (2 + 1) * FOLDS, "linear_probe": 2 * N_VARIANTS * FOLDS,
            "embed": N_PRETRAINED, "umap": N_PRETRAINED, "zeroshot": N_SA + 1, "attention_maps": N_SA,
            "plan_json": 1, "tables": 1, "all": 1},
    # segmentation.variants [smart, smit, scratch]: two exports of pretrained encoders, three SwinUNETR runs
    "segmentation": {"pretrain": 2, "monai_ssl_export": 2, "synth_segmentation": 1, "segmentation_finetune": 3,
                     "segmentation_table": 1, "plan_json": 1, "synth_ct": 1, "resample_shard": SHARDS,
                     "resample": 1, "total": 13 + SHARDS},
    "ablation_no_nt": {"pretrain": 2, "finetune": 2 * 3 * FOLDS, "linear_probe": 2 * 2 * FOLDS, "zeroshot": 2,
                       "umap": 2, "attention_maps": 2, "raters_consensus": 1, "total": 20 + SHARDS + 10 * FOLDS},
    # Issue #13 study (schema defaults): 3 seeds x {smart, smart_no_nt, smart_no_sa, smit, amip, random_init};
    # 5 pretrained arms, 3 of them with SA (smart, smart_no_nt, amip) + the random-attention zero-shot baseline.
    "study": {"study_synth_data": 3, "study_resample": 3, "study_splits": 3, "study_pretrain": 3 * 5,
              "study_probe": 3 * 6, "study_embed": 3 * 5, "study_umap": 3 * 5, "study_zeroshot": 3 * (3 + 1),
              "study_table": 1, "synth_organs": 1, "synth_raters": 1, "raters_consensus": 1, "study": 1, "total": 89},
}


DEMO_EXPECTED["all"]["total"] = sum(DEMO_EXPECTED["all"].values())


@pytest.mark.parametrize("target", sorted(DEMO_EXPECTED))
def test_demo_targets_plan(demo_workspace, target):
    counts = dry_run(demo_workspace, target)
    for rule, n in DEMO_EXPECTED[target].items():
        assert counts.get(rule) == n, (target, rule, counts)
    if target == "all":
        assert counts == DEMO_EXPECTED["all"]


def test_segmentation_is_off_in_all_unless_enabled(demo_workspace):
    assert "segmentation_finetune" not in dry_run(demo_workspace, "all")
    overlay = demo_workspace / "seg_on.yaml"
    overlay.write_text(yaml.safe_dump({"segmentation": {"enabled": True, "variants": ["smart", "scratch"]}}))
    # --configfile replaces the demo config (issue 11 layering): name it first, then the overlay
    counts = dry_run(demo_workspace, "all", configfiles=("config/config.yaml", str(overlay)))
    assert counts["segmentation_finetune"] == 2 and counts["monai_ssl_export"] == 1


def test_every_named_target_is_tested():
    assert set(TARGETS) | {f"ablation_{a}" for a in load_yaml(REPO / "config/config.yaml")["ablations"]} == set(
        DEMO_EXPECTED)


N_PAPER_CTS = 40


def paper_overlay(tmp_path: Path) -> Path:
    """Stand-in files for paper.yaml's REPLACE_ME data paths, so the plan can be checked without the data."""
    from smart.data.synthetic.lidc_dicom import write_lidc_dicom

    real = tmp_path / "data"
    for d in ("lung", "other"):
        (real / d).mkdir(parents=True)
    write_lidc_dicom(real / "LIDC-IDRI", [1], slab=0)  # one real DB series (a slice or so): the root check reads it
    for i in range(N_PAPER_CTS):  # CT stand-ins (never read by a dry run), some in nested sub-folders
        f = real / ("lung" if i % 2 else "other") / (f"site{i % 3}" if i % 4 else "") / f"ct{i:03d}.nii.gz"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"")
    for f in ("cohort.csv", "organmnist3d_64.npz", "raters.csv", "segmentation.csv"):
        (real / f).write_text("")
    overlay = {"data": {"ct": {"source": "paths", "paths": [str(real / "lung"), str(real / "other")]},
                        "organmnist": {"source": "npz", "npz": str(real / "organmnist3d_64.npz")},
                        "raters": {"source": "csv", "csv": str(real / "raters.csv")}},
               "segmentation": {"csv": str(real / "segmentation.csv")},
               "tasks": {"lidc": {"source": "pylidc", "dicom_root": str(real / "LIDC-IDRI")},
                         "response": {"source": "lesions", "cohort": str(real / "cohort.csv")}}}
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


def paper_expected() -> dict[str, int]:
    cfg = load_yaml(REPO / "config/paper.yaml")
    variants = cfg["variants"]
    pretrained = [v for v, s in variants.items() if s["method"] != "scratch"]
    heads = sum(len(s.get("heads", ["x"])) for s in variants.values())
    folds = cfg["splits"]["folds"]
    ft = sum(len(spec["fractions"]) for spec in cfg["tasks"].values()) * heads * folds
    probe = len(cfg["tasks"]) * len(variants) * len(cfg["probe"]["fractions"]) * folds
    with_sa = [v for v in pretrained if variants[v].get("sa", True)]
    expected = {"pretrain": len(pretrained), "finetune": ft, "linear_probe": probe, "embed": len(pretrained),
                "umap": len(pretrained), "zeroshot": len(with_sa) + 1,
                "attention_maps": len(with_sa) * len(cfg["evaluate"]["attention_tasks"]),
                "lidc_cohort": 1, "lidc_nodules": 1, "resample": 1, "resample_shard": cfg["preprocess"]["shards"],
                "splits": len(cfg["tasks"]), "tables": 1, "plan_json": 1, "raters_consensus": 1,
                "response_crops": 1, "all": 1}
    return {**expected, "total": sum(expected.values())}


def test_paper_all_plans(demo_workspace, tmp_path):
    counts = dry_run(demo_workspace, configfiles=("config/paper.yaml", str(paper_overlay(tmp_path))))
    assert counts == paper_expected()  # the whole job table
    # the paper has 22 pretrained variants: 5 methods + 17 ablation/sweep/generalisation variants
    assert counts["pretrain"] == 22


@pytest.mark.slow
def test_paper_ablation_targets_plan_together(demo_workspace, tmp_path):
    ablations = load_yaml(REPO / "config/paper.yaml")["ablations"]
    assert {"no_nt", "no_sa", "losses", "sa_stage", "pdr"} <= set(ablations)
    counts = dry_run(demo_workspace, *[f"ablation_{a}" for a in ablations],
                     configfiles=("config/paper.yaml", str(paper_overlay(tmp_path))))
    members = {v for vs in ablations.values() for v in vs}
    assert counts["pretrain"] == len(members)


@pytest.mark.slow
@pytest.mark.parametrize("target", [*TARGETS, "ablation_no_nt", "ablation_losses", "ablation_pdr"])
def test_paper_each_target_plans(demo_workspace, tmp_path, target):
    counts = dry_run(demo_workspace, target, configfiles=("config/paper.yaml", str(paper_overlay(tmp_path))))
    assert counts["total"] >= 2


def test_paper_resampling_is_sharded(demo_workspace, tmp_path):
    # >= 40 CTs: many independent resampling jobs and one merge; the CTs themselves are no job's declared output
    proc = run_snakemake(demo_workspace, "-n", "-p", "results/preprocess/manifest.csv", "--configfile",
                         "config/paper.yaml", str(paper_overlay(tmp_path)), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout)
    assert counts["resample_shard"] == load_yaml(REPO / "config/paper.yaml")["preprocess"]["shards"] >= 2
    assert counts["resample"] == 1
    assert "--shard 63 --shards 64" in proc.stdout and "--out-dir results/preprocess/ct_2mm" in proc.stdout
    # each shard refuses, with a line, a CT whose estimated peak exceeds the job's memory (data_preparation.md)
    mem_mb = load_yaml(REPO / "config/paper.yaml")["resources"]["resample"]["mem_mb"]
    assert proc.stdout.count(f"--mem-mb {mem_mb} ") == counts["resample_shard"]
    assert "output: results/preprocess/ct_2mm" not in proc.stdout


@pytest.mark.parametrize("edit, message", [
    ({"preprocess": {"shards": 0}}, "config preprocess.shards must be an integer >= 1, got 0"),
    ({"preprocess": {"shards": -3}}, "config preprocess.shards must be an integer >= 1, got -3"),
    ({"data": {"ct": {"paths": ["EMPTY"]}}}, "is an empty folder (no files in it or below it)"),
    ({"data": {"ct": {"paths": ["NOTCT"]}}}, "holds no CT image (NIfTI/NRRD/MetaImage by suffix, or DICOM) in it or "
                                              "below it, only 2 other file(s)"),
    ({"tasks": {"lidc": {"dicom_root": "EMPTY"}}}, "holds no LIDC-IDRI-NNNN patient folder"),
    ({"tasks": {"lidc": {"dicom_root": "NODB"}}}, "holds no DICOM series of an annotated scan of the LIDC annotation "
                                                   "DB"),
])
def test_paper_bad_data_input_is_refused_before_any_job(demo_workspace, tmp_path, edit, message):
    from smart.data.synthetic.ct_dicom import write_ct_series

    overlay = paper_overlay(tmp_path)
    (tmp_path / "empty").mkdir()
    # NOTCT: files, nested, none of them a CT (a README, a spreadsheet: nothing for the resampling jobs to read)
    (tmp_path / "notct/site/a").mkdir(parents=True)
    (tmp_path / "notct/README.txt").write_text("scans to come\n")
    (tmp_path / "notct/site/a/list.xlsx").write_bytes(b"PK\x03\x04")
    # NODB: TCIA's layout and real DICOM, but a series the LIDC annotation DB does not hold
    write_ct_series(tmp_path / "nodb/LIDC-IDRI-0001/study/series", np.zeros((2, 8, 8), np.int16), (0.7, 0.7, 2.5),
                    (0.0, 0.0, 0.0), "LIDC-IDRI-0001", "not-in-the-db")
    text = yaml.safe_dump(edit)
    for name in ("EMPTY", "NOTCT", "NODB"):
        text = text.replace(name, str(tmp_path / name.lower()))
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = run_snakemake(demo_workspace, "-n", "preprocess", "--configfile", "config/paper.yaml", str(overlay),
                         str(bad), timeout=300)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr
    assert "Job stats" not in proc.stdout


PAPER_PLACEHOLDERS = [
    "config data.ct.paths[0] = '/data/REPLACE_ME/pretrain_ct/lung' is a placeholder",
    "config data.ct.paths[1] = '/data/REPLACE_ME/pretrain_ct/other' is a placeholder",
    "config data.organmnist.npz = '/data/REPLACE_ME/medmnist/organmnist3d_64.npz' is a placeholder",
    "config data.raters.csv = '/data/REPLACE_ME/5R/raters.csv' is a placeholder",
    "config tasks.lidc.dicom_root = '/data/REPLACE_ME/LIDC-IDRI' is a placeholder",
    "config tasks.response.cohort = '/data/REPLACE_ME/immunotherapy/cohort.csv' is a placeholder"]
SEGMENTATION_PLACEHOLDER = "config segmentation.csv = '/data/REPLACE_ME/segmentation/segmentation.csv' is a placeholder"


def assert_one_message(out: str) -> None:
    """A config error ends the run with its message: no traceback through the rule files, no job planned."""
    assert "Traceback" not in out and 'File "' not in out and ".smk" not in out, out[-3000:]
    assert "Job stats" not in out


@pytest.mark.parametrize("targets, expected", [
    ((), PAPER_PLACEHOLDERS),                                          # `all`: segmentation is off in it
    (("segmentation",), PAPER_PLACEHOLDERS + [SEGMENTATION_PLACEHOLDER]),
])
def test_paper_placeholders_are_reported_at_once_for_the_file_given(demo_workspace, targets, expected):
    copy = demo_workspace / "my paper.yaml"  # a copy: the report names it, not config/paper.yaml
    copy.write_text((demo_workspace / "config/paper.yaml").read_text())
    proc = run_snakemake(demo_workspace, "-n", *targets, "--configfile", copy.name, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"my paper.yaml: {len(expected)} value(s) still hold the placeholder REPLACE_ME" in out, out[-3000:]
    assert re.findall(r"^  (config .* is a placeholder)$", out, flags=re.M) == expected
    assert "config/paper.yaml" not in out
    assert_one_message(out)


def test_paper_smart_no_sa_with_aitd_fails_before_any_job(demo_workspace, tmp_path):
    """Before issue 21 the w/o-SA ablation kept AITD on and failed only when its GPU job started; resolving every
    variant through smart.config before any job makes it a config-time error naming the variant and the key."""
    text = (demo_workspace / "config/paper.yaml").read_text()
    fixed = "{model.sa_stage: null, masking.strategy: random, loss.aitd: 0.0}"
    assert text.count(fixed) == 1
    broken = tmp_path / "paper_aitd_on.yaml"
    broken.write_text(text.replace(fixed, "{model.sa_stage: null, masking.strategy: random}"))
    proc = run_snakemake(demo_workspace, "-n", "--configfile", str(broken), str(paper_overlay(tmp_path)),
                         timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    line = next(line for line in out.splitlines() if "config variants.smart_no_sa" in line)
    assert line.startswith("SMART config error: config variants.smart_no_sa (method 'smart'): ") and "loss.aitd" in line
    assert_one_message(out)


def test_paper_without_data_refuses_to_plan(demo_workspace):
    proc = run_snakemake(demo_workspace, "-n", "preprocess", "--configfile", "config/paper.yaml", timeout=300)
    assert proc.returncode != 0
    assert "REPLACE_ME" in proc.stdout + proc.stderr


def test_shell_commands_follow_the_cli_contract(demo_workspace, tmp_path):
    targets = ["results/pretrain/smart_no_nt/encoder.pt", "results/finetune/lidc/scratch__cls/0.5/fold_2/metrics.json",
               "results/probe/response/smit/1.0/fold_1/metrics.json", "results/zeroshot/random/summary.json"]
    proc = run_snakemake(demo_workspace, "-n", "-p", *targets, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    pretrain = next(line for line in out.splitlines()
                    if "-m smart pretrain" in line and "--out results/pretrain/smart_no_nt " in line)
    steps = _DEMO["pretrain"]["max_steps"]
    assert f"--method smart --preset tiny --max-steps {steps} --set noisy_teacher.drop_ratio=0.0" in pretrain
    assert "--manifest results/preprocess/manifest.csv --out results/pretrain/smart_no_nt --resume" in pretrain
    assert "python -m smart pretrain --method smart" in pretrain  # CPU: plain python
    finetune = next(line for line in out.splitlines() if "-m smart finetune" in line)
    assert "--encoder none --cohort results/synthetic/nodules/cohort.csv" in finetune
    assert "--splits results/preprocess/lidc/splits.json --fold 2" in finetune
    assert "--head cls --fraction 0.5" in finetune
    assert "--set scratch_method=smart --set scratch_preset=tiny --set epochs=1" in finetune
    probe = next(line for line in out.splitlines() if "-m smart linear-probe" in line)
    assert "--encoder results/pretrain/smit/encoder.pt --cohort results/synthetic/response/cohort.csv" in probe
    assert "python -m smart consensus --raters results/synthetic/raters/raters.csv --out-dir results/preprocess/raters" in out
    assert "python -m smart zeroshot --encoder random --raters results/preprocess/raters/raters.csv" in out

    paper = run_snakemake(demo_workspace, "-n", "-p", "results/pretrain/smart_sa2/encoder.pt",
                          "results/finetune/response/smart__random_sa/0.25/fold_0/metrics.json",
                          "--configfile", "config/paper.yaml", str(paper_overlay(tmp_path)), timeout=300)
    assert paper.returncode == 0, paper.stderr[-2000:]
    assert "torchrun --standalone --nproc_per_node 4 -m smart pretrain" in paper.stdout
    assert "--method smart --preset paper --set model.sa_stage=2" in paper.stdout
    assert "--head random_sa --fraction 0.25 --resume --set batch_size=40 --set lr=0.0002" in paper.stdout
    assert "--set epochs=2000" in paper.stdout
    assert "gpu=4" in paper.stdout and "gpu_model=a100" in paper.stdout


def test_fig10_is_drawn_by_the_tables_job_only_with_a_pdr_ablation(demo_workspace, tmp_path):
    demo = run_snakemake(demo_workspace, "-n", "-p", "tables", timeout=300)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "pdr_umaps" not in demo.stdout and "--pdr-sweep" not in demo.stdout
    overlay = tmp_path / "pdr.yaml"
    overlay.write_text(yaml.safe_dump({"ablations": {"pdr": ["smart", "smart_no_nt"]}}))
    proc = run_snakemake(demo_workspace, "-n", "-p", "tables", "--configfile", "config/config.yaml", str(overlay),
                         timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--out results/tables --pdr-sweep smart smart_no_nt > results/logs/tables.log" in proc.stdout
    assert "results/tables/pdr_umaps.png" in proc.stdout and "results/cluster/smart_no_nt/umap.csv" in proc.stdout
    assert job_counts(proc.stdout) == job_counts(demo.stdout)   # no extra job: the tables job draws it
    off = tmp_path / "off.yaml"
    off.write_text(yaml.safe_dump({"cluster": {"enabled": False}}))
    proc = run_snakemake(demo_workspace, "-n", "-p", "tables", "--configfile", "config/config.yaml", str(overlay),
                         str(off), timeout=300)
    assert proc.returncode == 0 and "--pdr-sweep" not in proc.stdout   # no UMAPs, no Fig. 10
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"ablations": {"pdr": ["smart", "scratch"]}}))
    proc = run_snakemake(demo_workspace, "-n", "tables", "--configfile", "config/config.yaml", str(bad), timeout=300)
    assert proc.returncode != 0 and "config ablations.pdr: ['scratch'] have no pretraining" in proc.stdout + proc.stderr
