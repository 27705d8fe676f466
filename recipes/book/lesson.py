"""A recipe's lesson as HTML: its docstring in Markdown, its source highlighted, its captions.

The module docstring of a recipe is its lesson, written as plain prose with
`code`, lists and formulas in text. It is rendered as CommonMark with
markdown-it-py (a list may follow a line of prose directly, as the docstrings
write them); "ERRATA #n" becomes a link to the book's ERRATA page, and a
recipe named in `code` a link to its page. The source is highlighted by
Pygments, with the file's own line numbers.

Example:

>>> html = markdown("Keras adds λ·Σw² (ERRATA #10); see `dropout`.",
...                 errata_href="errata.html#erratum-{}".format,
...                 recipe_href={"dropout": "dropout.html"}.get)
>>> print(html)
<p>Keras adds λ·Σw² (<a class="erratum" href="errata.html#erratum-10">ERRATA #10</a>); see <a href="dropout.html"><code>dropout</code></a>.</p>
"""

from __future__ import annotations

import ast
import functools
import html
import inspect
import re

from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonConsoleLexer, PythonLexer

CITATION = re.compile(r"ERRATA\s+#\d+(?:(?:\s*,\s*|\s+and\s+|\s+or\s+)#\d+)*")
""""ERRATA #n", and the numbers that follow it in a list ("ERRATA #3, #4 and #15")."""

_NUMBER = re.compile(r"#(\d+)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(`])")
_SHORT_SENTENCE = 100
"""A caption sentence shorter than this is followed by the next one, which says more."""

PYGMENTS_STYLE = "friendly"
HISTORY_CAPTION = (
    "The training curves: loss (and the metric) per epoch on the training and the validation "
    "split. Where the validation curve stops improving while the training curve keeps going, "
    "the model has started to learn the training rows rather than the task."
)
"""The caption of the `history.png` every training run draws, where its lesson says nothing."""


@functools.lru_cache(maxsize=1)
def _parser():
    return MarkdownIt("commonmark", {"html": False, "highlight": _highlight_block}).enable("table")


def _highlight_block(code, language, _attributes):
    lexer = PythonConsoleLexer() if code.lstrip().startswith(">>>") else PythonLexer()
    if language and language not in ("python", "py", "pycon"):
        return ""  # markdown-it escapes it as plain code
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


def link_errata(text, errata_href, link="[{text}]({href})"):
    """`text` with each "ERRATA #n" (and "#m" listed after it) as a link.

    Args:
        text: the text.
        errata_href: `number -> URL` of an ERRATA entry.
        link: how a link is written, from `text` and `href`. Defaults to a Markdown link.

    >>> link_errata("(ERRATA #3, #4)", "e#{}".format, '<a href="{href}">{text}</a>')
    '(<a href="e#3">ERRATA #3</a>, <a href="e#4">#4</a>)'
    """

    def links(match):
        first = True

        def one(number):
            nonlocal first
            shown = f"ERRATA #{number[1]}" if first else f"#{number[1]}"
            first = False
            return link.format(text=shown, href=errata_href(int(number[1])))

        return _NUMBER.sub(one, re.sub(r"^ERRATA\s+", "", match[0]))

    return CITATION.sub(links, text)


def cells_with_errata(text, errata_href):
    """A table cell's plain `text` as HTML, its "ERRATA #n" linked (`Markup`)."""
    return Markup(link_errata(str(Markup.escape(text)), errata_href,
                              '<a class="erratum" href="{href}">{text}</a>'))


def cited(text):
    """The ERRATA numbers `text` cites, in order, each once.

    >>> cited("ERRATA #6, #7, #9 and #14; again ERRATA #6")
    [6, 7, 9, 14]
    """
    numbers = [int(n) for match in CITATION.finditer(text) for n in _NUMBER.findall(match[0])]
    return list(dict.fromkeys(numbers))


def _link_recipes(rendered, recipe_href):
    def link(match):
        href = recipe_href(html.unescape(match[1]))
        return f'<a href="{href}">{match[0]}</a>' if href else match[0]

    return re.sub(r"<code>([a-z0-9]+(?:-[a-z0-9]+)*)</code>", link, rendered)


def _mark_errata_links(rendered):
    return re.sub(r'<a href="([^"]*erratum-\d+)">', r'<a class="erratum" href="\1">', rendered)


def markdown(text, *, errata_href, recipe_href, inline=False):
    """Renders lesson prose as HTML (`Markup`).

    Args:
        text: Markdown (CommonMark) text.
        errata_href: `number -> URL` of an ERRATA entry.
        recipe_href: `name -> URL` of a recipe's page, or `None` for a name
            that is not a recipe in the book.
        inline: render one paragraph's content, without the `<p>`. Defaults to `False`.
    """
    source = link_errata(text, errata_href)
    rendered = _parser().renderInline(source) if inline else _parser().render(source)
    rendered = _mark_errata_links(_link_recipes(rendered, recipe_href))
    return Markup(rendered.strip())


def split_docstring(docstring):
    """`(title, body)` of a module docstring: its first line, and the rest, dedented."""
    text = inspect.cleandoc(docstring or "")
    title, _, body = text.partition("\n")
    return title.strip(), body.strip()


def lead_ins(rendered):
    """Marks the docstrings' lead-ins: "Notes:" and "What to look at:" open their paragraphs."""
    rendered = re.sub(r"<p>Notes: ", '<p class="notes"><strong>Notes:</strong> ', str(rendered))
    rendered = re.sub(r"<p>What to look at: ", '<p class="look"><strong>What to look at:</strong> ',
                      rendered)
    return Markup(rendered)


def caption(body, figure_name):
    """What the lesson says about `figure_name`: the sentence that names it (Markdown), or `None`.

    A short sentence ("What to look at: `loss_curves.png` and the table.") is
    followed by the next one, which says what the picture shows.

    >>> caption("Some text. What to look at: `a.png` and the table. It falls by 10x.", "a.png")
    'What to look at: `a.png` and the table. It falls by 10x.'
    >>> caption("Nothing here.", "a.png") is None
    True
    """
    for paragraph in re.split(r"\n\s*\n", body):
        flat = " ".join(paragraph.split())
        sentences = _SENTENCE_END.split(flat)
        for i, sentence in enumerate(sentences):
            if f"`{figure_name}`" in sentence:
                if len(sentence) < _SHORT_SENTENCE and i + 1 < len(sentences):
                    sentence += " " + sentences[i + 1]
                return sentence
    return None


def module_source(path):
    """`(first line number, code)`: the module's source after its docstring (the lesson)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    start = 0
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(
            getattr(tree.body[0], "value", None), ast.Constant):
        start = tree.body[0].end_lineno
    lines = source.splitlines(keepends=True)[start:]
    while lines and not lines[0].strip():
        lines.pop(0)
        start += 1
    return start + 1, "".join(lines)


def highlighted(code, first_line=1):
    """Python `code` highlighted by Pygments, with line numbers from `first_line` (`Markup`)."""
    formatter = HtmlFormatter(linenos="table", linenostart=first_line, cssclass="highlight")
    return Markup(highlight(code, PythonLexer(), formatter))


def pygments_css():
    """The stylesheet of the highlighted code."""
    return HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".highlight")
