"""``smart finetune``: cross-validated fine-tuning of one encoder on one fold (smart.downstream.finetune)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    from smart.downstream.protocol import add_downstream_arguments
    from smart.models.classifier import HEADS

    add_downstream_arguments(parser)
    parser.add_argument("--head", choices=HEADS, default="cls",
                        help="classification feature: SA [CLS] (default), stage-4 average pool, or a re-initialised SA")


def main(args) -> int:
    from smart.downstream.finetune import main_from_args

    return main_from_args(args)
