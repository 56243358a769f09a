"""Every command in the fenced shell blocks of README.md and docs/*.md, as argument lists (tests/workflow/
test_documented_commands.py runs each one)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

SHELL_BLOCKS = {"bash", "sh", "shell"}
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]


def _command_texts(body: str) -> list[str]:
    """Split a shell block into command lines: a newline outside quotes ends one, ``\\``-newline continues it and a
    ``#`` at the start of a word begins a comment."""
    out, buf, quote, i = [], [], None, 0
    while i < len(body):
        c = body[i]
        if quote:
            buf.append(c)
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
            buf.append(c)
        elif c == "#" and (not buf or buf[-1].isspace()):
            while i + 1 < len(body) and body[i + 1] != "\n":
                i += 1
        elif c == "\\" and body[i + 1:i + 2] == "\n":
            buf.append(" ")
            i += 1
        elif c == "\n":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    out.append("".join(buf))
    return [t.strip() for t in out if t.strip()]


def shell_commands(body: str) -> list[list[str]]:
    """The commands of a shell block as argument lists (``a && b`` gives two)."""
    commands = []
    for text in _command_texts(body):
        words = shlex.split(text)
        while "&&" in words:
            cut = words.index("&&")
            commands.append(words[:cut])
            words = words[cut + 1:]
        commands.append(words)
    return [c for c in commands if c]


def documented_commands(repo: Path) -> dict[str, list[str]]:
    """``{shlex.join(command): "file"}``-style inventory: every shell command of README.md and docs/*.md, keyed by
    its normalised text, with the files it appears in."""
    found: dict[str, list[str]] = {}
    for path in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]:
        for lang, body in fenced_blocks(path.read_text(encoding="utf-8")):
            if lang in SHELL_BLOCKS:
                for words in shell_commands(body):
                    found.setdefault(shlex.join(words), []).append(str(path.relative_to(repo)))
    return found
