"""The README's demo results, rendered from a results folder instead of typed by hand.

The README holds one block between ``<!-- demo-results:begin -->`` and ``<!-- demo-results:end -->``:
Tables II and I exactly as ``smart tables`` wrote them (``results/tables/table{2,1}.md``, the paper's values and
the difference included) and the zero-shot DSC of every ``results/zeroshot/*/summary.json``. ``smart tables
--readme README.md`` rewrites the block after writing the tables; ``--check-readme`` only compares, so a test (and a
person) can tell whether the committed README still shows what the demo writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from smart.atomic import write_text
from smart.eval.tables import load_plan

BEGIN, END = "<!-- demo-results:begin -->", "<!-- demo-results:end -->"
README_TABLES = (2, 1)
RANDOM_LABEL = "random attention"


def zeroshot_line(results: str | os.PathLike, labels: dict[str, str]) -> str:
    """``Zero-shot tumour DSC (... n cases): <label> m ± s, ...`` in the order of ``labels`` (the variants), then the
    random baseline; empty when no zero-shot ran."""
    root = Path(results) / "zeroshot"
    summaries = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*/summary.json"))}
    if not summaries:
        return ""
    order = [v for v in labels if v in summaries] + sorted(v for v in summaries if v not in labels)
    cases = sorted({int(s["n_cases"]) for s in summaries.values()})
    parts = [f"{labels.get(v, RANDOM_LABEL if v == 'random' else v)} {summaries[v]['dsc_mean']:.3f} ± "
             f"{summaries[v]['dsc_std']:.3f}" for v in order]
    n = "/".join(map(str, cases))
    return f"Zero-shot tumour DSC (`results/zeroshot/*/summary.json`, {n} cases): " + ", ".join(parts) + "."


def render_block(results: str | os.PathLike, tables_dir: str | os.PathLike, plan_json: str | os.PathLike) -> str:
    """The README block (markers included) from ``tables_dir/table{2,1}.md`` and the zero-shot summaries (variant
    labels from the workflow's ``plan_json``)."""
    tables_dir = Path(tables_dir)
    variants, _ = load_plan(plan_json)
    labels = {name: spec.get("label", name) for name, spec in variants.items()}
    parts = []
    for number in README_TABLES:
        path = tables_dir / f"table{number}.md"
        if not path.is_file():
            raise ValueError(f"{path} does not exist: run `smart tables` (or the workflow's tables rule) first")
        parts.append(path.read_text(encoding="utf-8").strip())
    line = zeroshot_line(results, labels)
    if line:
        parts.append(line)
    return "\n".join([BEGIN, *(p + "\n" for p in parts), END])


def _split(text: str, readme: Path) -> tuple[str, str, str]:
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start or text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"{readme}: needs exactly one {BEGIN} ... {END} block (in that order)")
    return text[:start], text[start:stop + len(END)], text[stop + len(END):]


def readme_block(readme: str | os.PathLike) -> str:
    """The block currently in ``readme`` (markers included)."""
    readme = Path(readme)
    return _split(readme.read_text(encoding="utf-8"), readme)[1]


def update_readme(readme: str | os.PathLike, block: str) -> bool:
    """Replace the block in ``readme`` by ``block`` (atomic write); returns whether the file changed."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    head, old, tail = _split(text, readme)
    if old == block:
        return False
    write_text(readme, head + block + tail)
    return True


__all__ = ["BEGIN", "END", "readme_block", "render_block", "update_readme", "zeroshot_line"]
