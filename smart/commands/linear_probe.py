"""``smart linear-probe``: logistic regression on frozen encoder features for one fold (smart.downstream.linear_probe)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    from smart.downstream.protocol import add_downstream_arguments

    add_downstream_arguments(parser)


def main(args) -> int:
    from smart.downstream.linear_probe import main_from_args

    return main_from_args(args)
