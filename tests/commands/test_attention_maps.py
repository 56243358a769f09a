"""``smart attention-maps`` end to end on the tiny cohort."""

from smart.cli import main


def test_attention_maps_figure(tiny_cohort, tiny_encoder, tmp_path, capsys):
    out = tmp_path / "att.png"
    assert main(["attention-maps", "--encoder", str(tiny_encoder), "--cohort", str(tiny_cohort / "cohort.csv"),
                 "--out", str(out), "--n", "2", "--crop", "32", "32", "32"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["attention-maps", "--encoder", str(tiny_encoder), "--cohort", str(tiny_cohort / "cohort.csv"),
                 "--out", str(out), "--samples", "nope", "--crop", "32", "32", "32"]) == 2
    assert "unknown sample_id" in capsys.readouterr().err
