"""The paper's reported numbers beside ours (docs/evaluation.md "The paper beside us").

``paper_values.csv`` (next to this module) holds every number the paper reports for a cell of our Tables I-VI and
the Fig. 6 data, one row per cell::

    table, variant, column, paper_text, status, section, paper_row, note

* ``table`` — the table key of ``smart.eval.tables`` (``I`` .. ``VI``) or ``Fig. 6``;
* ``variant`` — the variant name as ``config/paper.yaml`` spells it (``*`` = every row of that table);
* ``column`` — our table's column name;
* ``paper_text`` — the number exactly as the paper prints it (``0.895``, ``1.28 ± 0.57``; AP50/AR50 in %);
* ``status`` — ``reported``; ``inconsistent`` (the paper prints a number but contradicts or garbles it elsewhere:
  shown with ``‡`` and the note); ``not_reported`` (the paper shows the cell as a figure or leaves it empty, e.g.
  Fig. 6: nothing is invented);
* ``section`` / ``paper_row`` / ``note`` — where the number is and what the paper calls the row.

:func:`beside_paper` is table-agnostic: it joins any table frame that has a ``variant`` column on
``(table, variant, column)`` and inserts ``<column> [paper]`` and ``<column> [Δ]`` (ours minus the paper, on the
paper's scale and digits) right after each of our columns the paper reports.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

PAPER_VALUES = Path(__file__).with_name("paper_values.csv")
COLUMNS = ("table", "variant", "column", "paper_text", "status", "section", "paper_row", "note")
STATUSES = ("reported", "inconsistent", "not_reported")
ANY_VARIANT = "*"
PAPER_SUFFIX, DELTA_SUFFIX = " [paper]", " [Δ]"
INCONSISTENT_MARK = "‡"
NOT_REPORTED = "n.r."
_NUMBER = re.compile(r"^\s*([-+−]?\d+(?:\.\d+)?)")


def leading_number(text: object) -> float | None:
    """The first number of a cell (``"0.552 ± 0.045"`` -> 0.552); ``None`` for ``"—"``, blanks and non-strings."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return None if pd.isna(text) else float(text)
    match = _NUMBER.match(str(text)) if isinstance(text, str) else None
    return float(match.group(1).replace("−", "-")) if match else None


def _decimals(text: str) -> int:
    match = _NUMBER.match(text)
    return len(match.group(1).partition(".")[2]) if match else 3


def load_paper_values(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read and check ``paper_values.csv``: the columns, a known status, a number wherever one is claimed, and one
    row per ``(table, variant, column)``. Raises ``ValueError`` naming the file and the row."""
    path = Path(path) if path is not None else PAPER_VALUES
    if not path.is_file():
        raise ValueError(f"paper values file {path} does not exist")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (expected {list(COLUMNS)})")
    for i, row in frame.iterrows():
        where = f"{path} row {i + 2} ({row['table']}/{row['variant']}/{row['column']})"
        if row["status"] not in STATUSES:
            raise ValueError(f"{where}: status {row['status']!r} is not one of {STATUSES}")
        has_number = leading_number(row["paper_text"]) is not None
        if row["status"] == "not_reported" and row["paper_text"]:
            raise ValueError(f"{where}: a not_reported cell must leave paper_text empty")
        if row["status"] != "not_reported" and not has_number:
            raise ValueError(f"{where}: paper_text {row['paper_text']!r} is not a number")
        if row["status"] == "inconsistent" and not row["note"]:
            raise ValueError(f"{where}: an inconsistent cell needs a note saying why")
    dup = frame.duplicated(["table", "variant", "column"], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        raise ValueError(f"{path}: {first['table']}/{first['variant']}/{first['column']} is listed more than once")
    return frame


def _paper_cell(entry: pd.Series | None) -> str:
    if entry is None or entry["status"] == "not_reported":
        return NOT_REPORTED if entry is not None else ""
    mark = f" {INCONSISTENT_MARK}" if entry["status"] == "inconsistent" else ""
    return f"{entry['paper_text']}{mark}"


def _delta(ours: object, entry: pd.Series | None) -> str:
    if entry is None or entry["status"] == "not_reported":
        return ""
    mine, theirs = leading_number(ours), leading_number(entry["paper_text"])
    if mine is None or theirs is None:
        return ""
    diff = round(mine - theirs, _decimals(entry["paper_text"]))
    return f"{diff:+.{_decimals(entry['paper_text'])}f}".replace("-", "−")


def beside_paper(frame: pd.DataFrame, table: str, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """``frame`` with ``<column> [paper]`` and ``<column> [Δ]`` after every column the paper reports for ``table``.

    Rows are matched on ``frame["variant"]`` (a ``*`` entry matches every row). Cells the paper does not report
    stay empty (``n.r.`` where the file says ``not_reported``); ``inconsistent`` numbers carry ``‡``. A frame
    without a ``variant`` column, or a table the file does not list, comes back unchanged.
    """
    paper = load_paper_values() if paper is None else paper
    entries = paper[paper["table"] == table]
    if entries.empty or "variant" not in frame.columns:
        return frame
    lookup = {(r["variant"], r["column"]): r for _, r in entries.iterrows()}
    out = frame.copy()
    for column in [c for c in frame.columns if c in set(entries["column"])]:
        found = [lookup.get((v, column), lookup.get((ANY_VARIANT, column))) for v in frame["variant"]]
        at = out.columns.get_loc(column) + 1
        out.insert(at, column + PAPER_SUFFIX, [_paper_cell(e) for e in found])
        out.insert(at + 1, column + DELTA_SUFFIX, [_delta(o, e) for o, e in zip(frame[column], found)])
    return out


def paper_notes(table: str, variants: list[str], paper: pd.DataFrame | None = None) -> list[str]:
    """Footnotes for the rows shown: every ``inconsistent`` / ``not_reported`` entry of ``table`` (with its section)."""
    paper = load_paper_values() if paper is None else paper
    chosen = paper[(paper["table"] == table) & paper["status"].isin(["inconsistent", "not_reported"])
                   & (paper["variant"].isin(variants) | (paper["variant"] == ANY_VARIANT))]
    marks = {"inconsistent": INCONSISTENT_MARK, "not_reported": NOT_REPORTED}
    return [f"{marks[r['status']]} {r['variant']} / {r['column']} (paper Sec. {r['section']}): {r['note']}"
            for _, r in chosen.iterrows()]


def split_paper_columns(columns: list[str]) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """``(our columns, {our column: (paper column, Δ column)})`` of a frame made by :func:`beside_paper`."""
    ours = [c for c in columns if not c.endswith((PAPER_SUFFIX, DELTA_SUFFIX))]
    pairs = {c: (c + PAPER_SUFFIX, c + DELTA_SUFFIX) for c in ours if c + PAPER_SUFFIX in columns}
    return ours, pairs


__all__ = ["PAPER_VALUES", "beside_paper", "leading_number", "load_paper_values", "paper_notes",
           "split_paper_columns"]
