"""paper_values.csv against the paper's own text, the join that puts the paper beside our cells, and the contract
that every transcribed cell names a variant of config/paper.yaml and a column our table builders produce."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from smart.eval import tables
from smart.eval.paper_values import (PAPER_VALUES, beside_paper, leading_number, load_paper_values, paper_notes)

REPO = Path(__file__).resolve().parents[2]
PAPER = next((p for p in (REPO.parent / "shared/paper/SMART_paper.txt", Path("/work/shared/paper/SMART_paper.txt"))
              if p.is_file()), None)

# Where each table starts in the paper's text and its column order there, written from the paper independently of
# paper_values.csv (the text copy lost Table II's caption: its block starts at the "Linear Probing" header line).
BLOCKS = {
    "I": ("TABLE I:", 1, ["Intra-cluster (↓)", "Inter-cluster (↑)"]),
    "II": ("Pretext SSL\tLi", 1, ["Probe AP50", "Probe AR50", "Probe AUC", "FT AP50", "FT AR50", "FT AUC"]),
    "III": ("TABLE III:", 1, ["Probe AP50", "Probe AR50", "Probe AUC", "FT AP50", "FT AR50", "FT AUC"]),
    "V": ("TABLE V:", 1, ["Intra-cluster (↓)", "Inter-cluster (↑)", "LIDC Probe AUC", "LIDC FT AUC"]),
    "VI": ("TABLE VI:", 2, ["Intra-cluster (↓)", "Inter-cluster (↑)", "LIDC Probe AUC", "LIDC FT AUC"]),
}


def _clean(cell: str) -> str:
    """The paper's LaTeX-ish cells as plain text: ``$\\textbf{1.28}\\pm\\textbf{0.57}$`` -> ``1.28 ± 0.57``."""
    cell = cell.replace("$", "").replace("\\textbf{", "").replace("{\\pm}", "±").replace("\\pm", "±").replace("}", "")
    cell = re.sub(r"\s*±\s*", " ± ", cell)
    return " ".join(cell.split())


def _paper_rows(text: str, marker: str, label_cells: int) -> dict[str, list[str]]:
    """{row label: [cells]} for the tab-separated rows after ``marker`` (the first occurrence of each label)."""
    rows: dict[str, list[str]] = {}
    for line in text[text.index(marker):].splitlines()[1:40]:
        cells = line.split("\t")
        if len(cells) < label_cells + 2:
            continue
        label = " ".join(c.strip() for c in cells[:label_cells])
        rows.setdefault(label, [_clean(c) for c in cells[label_cells:] if c.strip()])
    return rows


@pytest.fixture(scope="module")
def paper_text() -> str:
    if PAPER is None:
        pytest.skip("the paper's text (shared/paper/SMART_paper.txt) is not beside this checkout")
    return PAPER.read_text(encoding="utf-8")


@pytest.mark.parametrize("table", sorted(BLOCKS))
def test_every_reported_cell_matches_the_papers_table(paper_text, table):
    marker, label_cells, columns = BLOCKS[table]
    rows = _paper_rows(paper_text, marker, label_cells)
    entries = load_paper_values()
    entries = entries[(entries["table"] == table) & (entries["status"] != "not_reported")
                      & ~entries["section"].str.contains("text")]  # cells taken from prose are checked below
    assert len(entries) > 0
    for _, e in entries.iterrows():
        assert e["paper_row"] in rows, f"{table}: no row {e['paper_row']!r} in the paper ({sorted(rows)})"
        assert rows[e["paper_row"]][columns.index(e["column"])] == e["paper_text"], (table, e["paper_row"], e["column"])


def test_table_iv_and_prose_cells_are_in_the_paper(paper_text):
    iv = paper_text[paper_text.index("TABLE IV:"):paper_text.index("Noisy teacher produced more diverse Attention")]
    entries = load_paper_values()
    for _, e in entries[entries["table"] == "IV"].iterrows():
        assert e["paper_text"] in iv, e["variant"]
    assert "0.002" in iv and "0.882" in iv  # the garbled NT-only row the file marks inconsistent
    assert "from scratch with an AUC of 0.780" in paper_text
    assert "from 0.620 to 0.xx" in paper_text  # why Table VI's iBOT+SMART probe AUC is marked inconsistent
    marked = entries[entries["status"] == "inconsistent"].set_index(["table", "variant", "column"])
    assert set(marked.index) == {("IV", "smart_no_sa", "LIDC FT AUC"), ("VI", "ibot_smart", "LIDC Probe AUC")}


def test_every_entry_names_a_paper_variant_and_a_built_column(tmp_path):
    """A renamed column or variant would silently drop the paper's values: build every table for config/paper.yaml's
    variants (empty results) and check each entry lands on a row and a column."""
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    variants = paper["variants"]
    tasks = tables.task_map(paper["tasks"], paper["table_tasks"], "config/paper.yaml")
    res = tables.Results(tmp_path)
    entries = load_paper_values()
    for numeral in tables.TABLES:
        frame, _ = tables.build_table(res, variants, numeral, tasks.for_table(numeral))
        for _, e in entries[entries["table"] == numeral].iterrows():
            assert e["variant"] in set(frame["variant"]), (numeral, e["variant"])
            assert e["column"] in frame.columns, (numeral, e["column"])
    fig6 = entries[entries["table"] == "Fig. 6"]
    assert set(fig6["column"]) <= set(tables.limited_data(res, variants, list(tasks.tasks)).columns)


def test_join_puts_paper_and_difference_beside_our_cell():
    frame = pd.DataFrame({"Pretext SSL task": ["SMART (S)", "SMIT (S)", "Mine"], "variant": ["smart", "smit", "mine"],
                          "FT AP50": ["5.3 ± 7.4", "—", "1.0 ± 0.0"], "FT AUC": ["0.552 ± 0.045", "0.9", "0.5"],
                          "sources": ["a", "b", "c"]})
    out = beside_paper(frame, "II")
    assert list(out.columns) == ["Pretext SSL task", "variant", "FT AP50", "FT AP50 [paper]", "FT AP50 [Δ]", "FT AUC",
                                 "FT AUC [paper]", "FT AUC [Δ]", "sources"]
    smart = out.set_index("variant").loc["smart"]
    assert (smart["FT AP50 [paper]"], smart["FT AP50 [Δ]"]) == ("66.8", "−61.5")   # 5.3 - 66.8, the paper's 1 digit
    assert (smart["FT AUC [paper]"], smart["FT AUC [Δ]"]) == ("0.895", "−0.343")   # 0.552 - 0.895
    smit = out.set_index("variant").loc["smit"]
    assert (smit["FT AP50 [paper]"], smit["FT AP50 [Δ]"]) == ("72.7", "")          # ours missing: no difference
    assert (smit["FT AUC [paper]"], smit["FT AUC [Δ]"]) == ("0.859", "+0.041")
    assert tuple(out.set_index("variant").loc["mine", ["FT AUC [paper]", "FT AUC [Δ]"]]) == ("", "")
    assert beside_paper(frame, "no such table").equals(frame)


def test_inconsistent_and_not_reported_cells_are_marked_not_invented():
    vi = beside_paper(pd.DataFrame({"variant": ["ibot_smart"], "LIDC Probe AUC": ["0.700"]}), "VI")
    assert vi.loc[0, "LIDC Probe AUC [paper]"] == "0.656 ‡"
    assert paper_notes("VI", ["ibot_smart"])[0].startswith("‡ ibot_smart / LIDC Probe AUC")
    fig6 = beside_paper(pd.DataFrame({"variant": ["smart", "smit"], "auc_mean": [0.7, 0.6]}), "Fig. 6")
    assert fig6["auc_mean [paper]"].tolist() == ["n.r.", "n.r."] and fig6["auc_mean [Δ]"].tolist() == ["", ""]


def test_markdown_shows_paper_and_difference_rows():
    frame = beside_paper(pd.DataFrame({"Pretext SSL task": ["SMART (S)", "Scratch"], "variant": ["smart", "scratch"],
                                       "Probe AUC": ["0.432 ± 0.079", "0.400"], "FT AUC": ["0.552 ± 0.045", "0.524"],
                                       "sources": ["", ""]}), "III")
    md = tables.to_markdown(frame, "T").splitlines()
    assert md[2] == "| Pretext SSL task | Probe AUC | FT AUC |"
    assert md[4:8] == ["| SMART (S) | 0.432 ± 0.079 | 0.552 ± 0.045 |", "| ↳ paper | 0.660 | 0.740 |",
                       "| ↳ Δ (ours − paper) | −0.228 | −0.188 |", "| Scratch | 0.400 | 0.524 |"]
    assert len(md) == 8  # the paper has no scratch row in Table III: no paper rows for it


def test_bad_file_is_rejected_with_its_name(tmp_path):
    good = PAPER_VALUES.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "paper_values.csv"
    bad.write_text("\n".join(good[:2] + [good[1]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="listed more than once"):
        load_paper_values(bad)
    bad.write_text("\n".join([good[0], good[1].replace(",reported,", ",maybe,")]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"paper_values.csv row 2 .*status 'maybe'"):
        load_paper_values(bad)
    assert leading_number("0.552 ± 0.045") == 0.552 and leading_number("—") is None
