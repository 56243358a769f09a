"""``smart linear-probe``: logistic regression on frozen encoder features for one fold (smart.train.linear_probe)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    from smart.eval.downstream import add_downstream_arguments

    add_downstream_arguments(parser)


def main(args) -> int:
    from smart.train.linear_probe import main_from_args

    return main_from_args(args)
