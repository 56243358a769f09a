"""``smart export``: write an encoder file from a training checkpoint's *student* encoder or from an ``encoder.pt``.

``--format smart`` (default): ``encoder.pt`` (backbone + SA + mask token, docs/ARCHITECTURE.md "Encoder file").
``--format monai-ssl``: MONAI's self-supervised Swin weights layout (``{"state_dict": {"module.<swinViT key>": ...}}``)
that ``SwinUNETR(...).load_from(torch.load(f, weights_only=True))`` reads (``smart.models.monai_ssl``).
"""

from __future__ import annotations

import argparse
import sys

FORMATS = ("smart", "monai-ssl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint_last.pt / checkpoint_final.pt of `smart pretrain`")
    source.add_argument("--encoder", help="an encoder.pt (smart-encoder/1) to convert")
    parser.add_argument("--out", required=True, help="file to write (e.g. encoder.pt or monai_ssl.pt)")
    parser.add_argument("--format", choices=FORMATS, default="smart",
                        help="smart: SMART encoder file (default); monai-ssl: MONAI self-supervised Swin layout for "
                             "SwinUNETR.load_from (Swin encoders only)")


def _export(args: argparse.Namespace) -> None:
    import tempfile
    from pathlib import Path

    from smart.models.monai_ssl import write_monai_ssl
    from smart.train.checkpoint import export_from_checkpoint

    if args.format == "smart":
        if args.checkpoint:
            export_from_checkpoint(args.checkpoint, args.out)
        else:
            from smart.models.encoder_io import export_encoder, load_encoder

            encoder, meta = load_encoder(args.encoder)
            export_encoder(encoder, args.out, model_config=meta["model_config"], method=meta["method"],
                           step=meta["step"])
        return
    if args.encoder:
        write_monai_ssl(args.encoder, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:  # checkpoint -> encoder.pt (validated) -> MONAI layout
        encoder_file = export_from_checkpoint(args.checkpoint, Path(tmp) / "encoder.pt", model_card=False)
        write_monai_ssl(encoder_file, args.out)


def main(args: argparse.Namespace) -> int:
    try:
        _export(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"smart export: error: {exc}", file=sys.stderr)
        return 2
    print(f"smart export: wrote {args.out} ({args.format})")
    return 0
