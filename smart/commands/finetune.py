"""``smart finetune``: cross-validated fine-tuning of one encoder on one fold (smart.train.finetune)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    from smart.eval.downstream import add_downstream_arguments
    from smart.models.classifier import HEADS

    add_downstream_arguments(parser)
    parser.add_argument("--head", choices=HEADS, default="cls",
                        help="classification feature: SA [CLS] (default), stage-4 average pool, or a re-initialised SA")


def main(args) -> int:
    from smart.train.finetune import main_from_args

    return main_from_args(args)
