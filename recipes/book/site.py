"""The lesson book's pages: the catalogue, a page per recipe, the ERRATA page.

`build(output, ...)` runs (or reuses) each recipe's run and writes the site
with Jinja2 templates (`recipes/book/templates/`, HTML auto-escaped) and one
stylesheet (`recipes/book/static/book.css`, plus Pygments' for the code).
Every link is relative, so the site works from `file://`, from any folder
and from any static web server; no page needs JavaScript. Each file is
written whole (to a temporary name, then renamed).
"""

from __future__ import annotations

import functools
import importlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from recipes.book import errata as errata_file
from recipes.book import lesson, numbers, runs
from recipes.core import registry
from recipes.core.errors import RunError, UsageError

MARKER = ".nn-recipes-book"
"""The file that marks a folder as a lesson book, which a build may overwrite."""

PAGES = "lessons"
RUNS = "runs"
STATIC = "static"


@dataclass
class Book:
    """What a build wrote: the folder, the lessons in order, their runs, the time it took."""

    folder: Path
    names: list
    runs: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def index(self):
        """The catalogue page."""
        return self.folder / "index.html"

    def page(self, name):
        """The page of recipe `name`."""
        return self.folder / PAGES / f"{name}.html"


def selected(only=None):
    """The recipes of the book, in the notes' order: all, or those `only` names.

    Raises:
        UsageError: a name that is not a recipe (the closest names suggested), or none given.
    """
    order = registry.in_notes_order()
    if only is None:
        return order
    wanted = [name.strip() for name in only if name.strip()]
    if not wanted:
        raise UsageError("`--only` names no recipe. Give recipe names separated by commas, "
                         "e.g. `--only single-neuron,binary-sigmoid`, or leave it out for all.")
    for name in wanted:
        registry.get(name)  # UnknownRecipe, with suggestions
    return [name for name in order if name in wanted]


def check_folder(folder):
    """Refuses a book folder that is a file, or a folder of other things (they could be overwritten).

    Raises:
        UsageError: naming the folder and what to do.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"`--output {folder}` is a file, not a folder. Pick a folder for the "
                         "book (it is created if missing), e.g. `--output book`.")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise UsageError(f"`--output {folder}` holds files that are not a lesson book, which the "
                         "build could overwrite. Pick a new or empty folder, e.g. `--output "
                         "book`, or one an earlier build wrote.")


def build(output="book", only=None, epochs_scale=1.0, *, rerun=False, log=print):
    """Runs the lessons (or reuses their runs in `output`) and writes the book.

    Args:
        output: the book's folder. Defaults to `"book"`.
        only: recipe names to put in the book. Defaults to `None` (every recipe).
        epochs_scale: each recipe's default epochs times this (at least 1).
            Defaults to `1.0`.
        rerun: run every recipe even when `output` holds its run with the
            same options. Defaults to `False`.
        log: called with one line of progress per recipe. Defaults to `print`.

    Returns:
        A `Book`.

    Raises:
        UsageError: a bad `output` or `only` (nothing is written).
        recipes.core.errors.RunError: a recipe failed; the pages of the runs
            before it are not written, their runs are kept for the next build.
    """
    started = time.perf_counter()
    folder = Path(output)
    names = selected(only)
    check_folder(folder)
    (folder / RUNS).mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("Written by `python -m recipes.book`; safe to delete.\n",
                                 encoding="utf-8")
    book = Book(folder=folder, names=names)
    for i, name in enumerate(names, 1):
        recipe = registry.get(name)
        try:
            run = runs.run(recipe, folder / RUNS / name, epochs_scale, rerun=rerun)
        except (UsageError, RunError) as error:
            raise type(error)(f"The book stopped at `{name}` ({i} of {len(names)}): {error} "
                              "The runs before it are kept in the book's folder, so the same "
                              "command goes on from there.") from None
        except OSError:
            raise
        except Exception as error:  # a bug in the recipe: name it, keep the cause for --debug
            raise RunError(f"The book stopped at `{name}` ({i} of {len(names)}): its run failed "
                           f"with an unexpected {type(error).__name__}: {error} This is likely "
                           "a bug in the recipe; re-run with --debug to see the traceback.") \
                from error
        book.runs[name] = run
        how = (f"reused the run of {run.ran_at}" if run.reused
               else f"ran in {run.seconds:.1f} s")
        log(f"[{i}/{len(names)}] {name}: {how}")
    _write_site(book, epochs_scale)
    book.seconds = time.perf_counter() - started
    return book


def _write_site(book, epochs_scale):
    folder = book.folder
    (folder / PAGES).mkdir(exist_ok=True)
    (folder / STATIC).mkdir(exist_ok=True)
    _write(folder / STATIC / "book.css", _static("book.css"))
    _write(folder / STATIC / "pygments.css", lesson.pygments_css())
    intro, entries = errata_file.load()
    titles = {e.number: e.title for e in entries}
    lessons = [_lesson_context(name, book, titles) for name in book.names]
    for i, context in enumerate(lessons):
        context["previous"] = lessons[i - 1] if i > 0 else None
        context["next"] = lessons[i + 1] if i + 1 < len(lessons) else None
        _write(book.page(context["name"]), _render("lesson.html", page=context, root="../"))
    _write(folder / "errata.html", _render(
        "errata.html", root="", intro=_prose(intro or "", book, page_root="") if intro else None,
        entries=[_entry_context(e, lessons, book) for e in entries], path=str(errata_file.PATH)))
    reused = sum(run.reused for run in book.runs.values())
    _write(folder / "index.html", _render(
        "index.html", root="", lessons=lessons, epochs_scale=epochs_scale, reused=reused,
        built_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        run_seconds=sum(run.seconds for run in book.runs.values()), errata=len(entries)))
    for stale in (folder / PAGES).glob("*.html"):
        if stale.stem not in book.runs:
            stale.unlink()


def _prose(text, book, page_root, inline=False):
    """Lesson Markdown as HTML, with links from a page at `page_root` (`""` or `"../"`)."""
    lessons = PAGES + "/" if page_root == "" else ""

    def recipe_href(name):
        return f"{lessons}{name}.html" if name in book.runs else None

    return lesson.markdown(text, errata_href=lambda n: f"{page_root}errata.html#erratum-{n}",
                           recipe_href=recipe_href, inline=inline)


def _lesson_context(name, book, errata_titles):
    recipe = registry.get(name)
    run = book.runs[name]
    module = importlib.import_module(recipe.module)
    title, body = lesson.split_docstring(module.__doc__)
    source_path = Path(module.__file__)
    first_line, code = lesson.module_source(source_path)
    report = run.report
    figures = []
    for figure in run.figures:
        said = lesson.caption(body, figure["name"])
        if said is None and figure["name"] == "history.png":
            said = lesson.HISTORY_CAPTION
        figures.append({
            "name": figure["name"], "title": figure["title"],
            "src": f"../{RUNS}/{name}/{figure['file']}",
            "caption": _prose(said, book, "../", inline=True) if said else None,
        })
    package_root = errata_file.PATH.parent
    try:
        shown_path = source_path.resolve().relative_to(package_root)
    except ValueError:
        shown_path = Path(*recipe.module.split(".")).with_suffix(".py")
    return {
        "name": name,
        "number": book.names.index(name) + 1,
        "title": (title or recipe.scenario).rstrip(".").replace("`", ""),
        "heading": lesson.markdown((title or recipe.scenario).rstrip("."), inline=True,
                                   errata_href=str, recipe_href=lambda _: None),
        "recipe": recipe,
        "href": f"{PAGES}/{name}.html",
        "lesson": lesson.lead_ins(_prose(body, book, "../")),
        "errata": [{"number": n, "title": errata_titles.get(n, ""),
                    "href": f"../errata.html#erratum-{n}"} for n in lesson.cited(body)],
        "figures": figures,
        "thumbnail": f"{RUNS}/{name}/{run.thumbnail}" if run.thumbnail else None,
        "headline": numbers.headline(report, body),
        "printed": [_with_errata_links(numbers.printed_table(t)) for t in run.tables],
        "metrics": numbers.tables("metrics", report.get("metrics")),
        "details": numbers.tables("details", report.get("details")),
        "timing": numbers.tables("timing", report.get("timing")),
        "options": [(f"--{option.replace('_', '-')}", numbers.text(value))
                    for option, value in run.options.items()],
        "run": run,
        "source": lesson.highlighted(code, first_line),
        "source_path": shown_path.as_posix(),
    }


def _with_errata_links(table):
    """A printed table whose cells cite "ERRATA #n", with those links."""
    for row in table.rows:
        for cell in row:
            if lesson.cited(cell.text):
                cell.html = lesson.cells_with_errata(
                    cell.text, lambda n: f"../errata.html#erratum-{n}")
    return table


def _entry_context(entry, lessons, book):
    return {
        "number": entry.number, "title": entry.title,
        "body": _prose(entry.body, book, ""),
        "cited_by": [page for page in lessons if entry.number in
                     [e["number"] for e in page["errata"]]],
    }


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("recipes.book", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )
    environment.filters["number"] = numbers.text
    return environment


def _render(template, **context):
    return _environment().get_template(template).render(**context)


def _static(name):
    from importlib import resources

    return resources.files("recipes.book").joinpath(STATIC, name).read_text(encoding="utf-8")


def _write(path, text):
    """Writes `text` to `path` whole: to a temporary file beside it, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
