"""The README's demo-results block: rendered from result files, replaced between its markers, checked for drift."""

import json

import pytest
from tables_fixtures import _write, results  # noqa: F401  (the results-tree fixture)

from smart.cli import main
from smart.eval import readme_tables

README = "# Title\n\nintro\n\n{begin}\nstale numbers\n{end}\n\n## Next section\n"


def _readme(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(README.format(begin=readme_tables.BEGIN, end=readme_tables.END), encoding="utf-8")
    return path


def test_render_replace_and_check(results, tmp_path):  # noqa: F811
    root, vpath = results
    _write(root / "zeroshot" / "smart" / "summary.json", {"dsc_mean": 0.0204, "dsc_std": 0.0261, "n_cases": 4})
    _write(root / "zeroshot" / "random" / "summary.json", {"dsc_mean": 0.015, "dsc_std": 0.023, "n_cases": 4})
    readme, out = _readme(tmp_path), tmp_path / "tables"

    assert main(["tables", "--results", str(root), "--plan", str(vpath), "--out", str(out),
                 "--check-readme", str(readme)]) == 1                       # stale block: drift is reported
    assert main(["tables", "--results", str(root), "--plan", str(vpath), "--out", str(out),
                 "--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nintro\n\n<!-- demo-results:begin -->\n**Table II:")
    assert text.endswith("<!-- demo-results:end -->\n\n## Next section\n") and "stale" not in text
    block = readme_tables.readme_block(readme)
    # the tables exactly as `smart tables` wrote them, Table II first, then the zero-shot line in variant order
    assert (out / "table2.md").read_text(encoding="utf-8").strip() in block
    assert block.index("**Table II:") < block.index("**Table I:")
    assert ("Zero-shot tumour DSC (`results/zeroshot/*/summary.json`, 4 cases): SMART 0.020 ± 0.026, "
            "random attention 0.015 ± 0.023.") in block
    assert "| ↳ paper |" in block                                          # the paper's values came along
    assert main(["tables", "--results", str(root), "--plan", str(vpath), "--out", str(out),
                 "--check-readme", str(readme)]) == 0


def test_missing_markers_is_a_one_line_error(results, tmp_path, capsys):  # noqa: F811
    root, vpath = results
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n", encoding="utf-8")
    assert main(["tables", "--results", str(root), "--plan", str(vpath), "--out", str(tmp_path / "t"),
                 "--readme", str(readme)]) == 2
    err = capsys.readouterr().err
    assert "README.md: needs exactly one <!-- demo-results:begin -->" in err and readme.read_text() == "# no block\n"
    with pytest.raises(ValueError, match="table2.md does not exist"):
        readme_tables.render_block(root, tmp_path / "empty", vpath)


def test_zeroshot_line_is_empty_without_summaries(tmp_path):
    assert readme_tables.zeroshot_line(tmp_path, {"smart": "SMART"}) == ""
    _write(tmp_path / "zeroshot" / "x" / "summary.json", json.loads('{"dsc_mean": 1, "dsc_std": 0, "n_cases": 2}'))
    assert readme_tables.zeroshot_line(tmp_path, {}).endswith("2 cases): x 1.000 ± 0.000.")
