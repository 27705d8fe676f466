"""ERRATA.md for the book: its introduction and its numbered entries.

ERRATA.md sits at the top of the source tree, beside `recipes/`; an installed
copy without it gets a book whose ERRATA page says where the list lives.

Example:

>>> intro, entries = parse("# Errata\\n\\nWhy.\\n\\n## 1. Nats, not bits\\n\\nText.\\n")
>>> intro, [(e.number, e.title, e.body) for e in entries]
('Why.', [(1, 'Nats, not bits', 'Text.')])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import recipes

PATH = Path(recipes.__file__).resolve().parent.parent / "ERRATA.md"
"""Where ERRATA.md is in a source checkout (and an editable install)."""

_ENTRY = re.compile(r"^## (\d+)\. (.+)$", re.MULTILINE)


@dataclass
class Entry:
    """One ERRATA entry: its number, its title, its Markdown body."""

    number: int
    title: str
    body: str


def parse(text):
    """`(introduction, [Entry, ...])` of ERRATA.md's text; the `# ` title line is left out."""
    parts = _ENTRY.split(text)
    intro = re.sub(r"^# .*\n", "", parts[0]).strip()
    entries = [Entry(int(number), title.strip(), body.strip())
               for number, title, body in zip(parts[1::3], parts[2::3], parts[3::3])]
    return intro, entries


def load(path=PATH):
    """`(introduction, entries)` of the ERRATA file at `path`; `(None, [])` when there is none."""
    try:
        return parse(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, []
