"""MODEL_CARD.md beside encoder.pt: written by pretraining and by `smart export --checkpoint`, its facts equal the run's
(manifest hash and count, overrides, steps, epochs, global batch, git SHA, versions), and its MONAI recipe runs."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from smart import cli
from smart.provenance import git_sha
from train_helpers import make_manifest

REPO = Path(__file__).resolve().parents[2]


def _row(card: str, name: str) -> str:
    match = re.search(rf"^\| {re.escape(name)} \| (.*) \|$", card, flags=re.M)
    assert match, f"no row {name!r} in the card"
    return match.group(1)


def _blocks(card: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", card, flags=re.S)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    manifest = make_manifest(root / "ct", n=3)
    out = root / "smart_no_nt"
    sets = ["data.crop_size=[32,32,32]", "data.batch_size=2", "data.num_workers=0", "train.steps=6",
            "train.checkpoint_every=2", "optim.warmup_steps=1", "noisy_teacher.drop_ratio=0.0"]
    argv = ["pretrain", "--method", "smart", "--preset", "tiny", "--manifest", str(manifest), "--out", str(out),
            "--max-steps", "3", *[a for s in sets for a in ("--set", s)]]
    assert cli.main(argv) == 0
    return out, manifest


def test_card_holds_the_run_facts(run):
    out, manifest = run
    card = (out / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card: SMART encoder `smart_no_nt`")
    assert _row(card, "Method").startswith("`smart` — SMART: masked image modelling")
    overrides = _row(card, "Variant overrides")
    assert "preset `tiny`" in overrides and "`noisy_teacher.drop_ratio=0.0`" in overrides
    sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert _row(card, "Pretraining data") == f"manifest `{manifest}` (sha256 `{sha}`), 3 CTs"
    assert _row(card, "Steps") == "3 of 6 scheduled"
    assert _row(card, "Epochs").startswith(f"{3 * 2 / 3:.2f} ")           # steps x global batch / CTs
    assert _row(card, "Global batch") == "2 (2 per process x 1 process(es))"
    assert _row(card, "Git SHA") == f"`{git_sha()}`"
    assert f"torch {torch.__version__}" in _row(card, "Versions") and "monai " in _row(card, "Versions")
    assert "embed_dim 12, depths [1, 1, 1, 1]" in _row(card, "Architecture")
    assert "## Intended use" in card and "Not a medical device" in card
    # issue 19 item 5: the stage-4 difference a MONAI user gets from an in-line SA backbone
    assert ("MONAI's `SwinUNETR` has no SA block, so with these weights it reproduces stage outputs 0..3 "
            "(`hidden_states_out[0..3]`) exactly, but stage output 4 (`hidden_states_out[4]`) sees the tokens "
            "without the SA residual") in card.replace("\n", " ")


def test_card_sa_note_follows_the_placement():
    from smart.config import load_config
    from smart.train.model_card import model_card_text

    def card(method, *sets):
        return model_card_text(load_config(method, "tiny", None, list(sets)), 1, {"n_images": 1})

    assert "differ in MONAI" in card("smart")
    assert "was a side branch: MONAI's `SwinUNETR` reproduces every stage output" in card(
        "smart", "model.sa_placement=branch")
    assert "SA block" not in card("smit").split("## Load it")[1].replace("backbone + SA block + mask token", "")


def test_card_monai_recipe_runs(run, tmp_path, monkeypatch):
    out, _ = run
    card = (out / "MODEL_CARD.md").read_text()
    (bash,) = _blocks(card, "bash")
    python = _blocks(card, "python")
    assert "feature_size=12" in python[1] and "num_heads=(1, 1, 2, 2)" in python[1]
    work = tmp_path / "w"
    work.mkdir()
    (work / "encoder.pt").write_bytes((out / "encoder.pt").read_bytes())
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    cmd = bash.strip().replace("python ", f"{sys.executable} ", 1)
    done = subprocess.run(cmd, shell=True, cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    scope: dict = {}
    monkeypatch.chdir(work)
    exec(python[0] + "\n" + python[1], scope)                            # load_encoder + SwinUNETR.load_from
    ours = scope["encoder"].backbone_state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in scope["model"].swinViT.state_dict().items())


def test_export_from_checkpoint_writes_the_same_card(run, tmp_path):
    out, _ = run
    dest = tmp_path / "exported" / "encoder.pt"
    dest.parent.mkdir()
    assert cli.main(["export", "--checkpoint", str(out / "checkpoint_final.pt"), "--out", str(dest)]) == 0
    exported = (dest.parent / "MODEL_CARD.md").read_text()
    original = (out / "MODEL_CARD.md").read_text()
    # same facts; only the title names the folder
    assert exported.split("\n", 1)[1] == original.split("\n", 1)[1]
    assert exported.startswith("# Model card: SMART encoder `exported`")
