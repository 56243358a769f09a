"""``smart finetune`` arguments (the shared downstream options plus --head)."""


import pytest


def test_downstream_cli_arguments():
    from smart.cli import build_parser

    args = build_parser("finetune").parse_args(["finetune", "--encoder", "none", "--cohort", "c.csv", "--splits", "s.json",
                                                "--fold", "1", "--out", "o", "--head", "pooled", "--fraction", "0.25",
                                                "--set", "epochs=3"])
    assert (args.head, args.fraction, args.fold, args.set) == ("pooled", 0.25, 1, ["epochs=3"])
    with pytest.raises(SystemExit):
        build_parser("finetune").parse_args(["finetune", "--encoder", "none", "--cohort", "c", "--splits", "s",
                                             "--fold", "0", "--out", "o", "--head", "mean"])
