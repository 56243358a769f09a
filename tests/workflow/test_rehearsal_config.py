"""config/rehearsal.yaml is config/paper.yaml with only the documented changes (issue 12: width, epoch/step counts,
data paths, and what the generated data's size and a CPU node force); everything else is the paper's."""

from __future__ import annotations

from workflow_workspace import REPO, load_yaml

# Where the rehearsal may differ from the paper (each change is commented in config/rehearsal.yaml).
ALLOWED = ("data.ct.paths", "data.organmnist.npz", "data.raters.csv", "tasks.lidc.dicom_root", "tasks.lidc.test_size",
           "tasks.lidc.set.epochs", "tasks.response.cohort", "tasks.response.set.epochs", "preprocess.shards",
           "pretrain.set.", "finetune.set.batch_size", "finetune.set.micro_batch_size", "finetune.set.probe_max_iter", "resources.",
           "segmentation.csv")


def _flat(node, prefix=""):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def test_rehearsal_changes_only_width_counts_and_data():
    paper, rehearsal = _flat(load_yaml(REPO / "config/paper.yaml")), _flat(load_yaml(REPO / "config/rehearsal.yaml"))
    changed = {k for k in set(paper) | set(rehearsal) if paper.get(k) != rehearsal.get(k)}
    assert changed and all(k.startswith(ALLOWED) for k in changed), sorted(k for k in changed
                                                                          if not k.startswith(ALLOWED))
    widths = {k: v for k, v in rehearsal.items() if k.startswith("pretrain.set.")}
    assert widths["pretrain.set.model.embed_dim"] == 12 and widths["pretrain.set.train.epochs"] == 1
    assert not any("REPLACE_ME" in str(v) for v in rehearsal.values())
    assert rehearsal["preprocess.shards"] >= 2
