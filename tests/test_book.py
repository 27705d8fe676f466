"""The lesson book: a small real book built in a temporary folder, checked as files and in Chromium.

One build of three quick recipes (real runs, a twentieth of their epochs) is
shared by the module; the browser test opens every page of it in headless
Chromium (Debian's `chromium`, driven by Playwright). `.ci/run` installs
Chromium, and the test extra Playwright, so in CI the browser test runs.
"""

import json
import os
import re
import shutil
import struct
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from recipes.book import numbers, site
from recipes.book.__main__ import main
from recipes.core import registry

NAMES = ["decision-tree-entropy", "binary-sigmoid", "single-neuron"]
"""Three quick lessons: one without figures, one training run, one that trains nothing."""
SCALE = 0.05
PNG = b"\x89PNG\r\n\x1a\n"
CHROMIUM = "/usr/bin/chromium"
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _Page(HTMLParser):
    """What the checks need from one HTML page: links, images, ids, numbers, scripts."""

    def __init__(self):
        super().__init__()
        self.links, self.images, self.ids, self.numbers, self.scripts = [], [], set(), [], 0
        self._number = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "link" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "script":
            self.scripts += 1
        if "data-path" in attrs:
            self._number = [json.loads(attrs["data-path"]), json.loads(attrs["data-value"]), ""]

    def handle_data(self, data):
        if self._number is not None:
            self._number[2] += data

    def handle_endtag(self, tag):
        if self._number is not None and tag in ("td", "strong"):
            self.numbers.append(tuple(self._number))
            self._number = None


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book") / "book"
    lines = []
    built = site.build(folder, NAMES, SCALE, log=lines.append)
    return built, lines


def _html_files(folder):
    return sorted(folder.rglob("*.html"))


def test_the_book_has_a_page_per_lesson_in_the_notes_order(book):
    built, lines = book
    order = [n for n in registry.in_notes_order() if n in NAMES]
    assert built.names == order == ["single-neuron", "binary-sigmoid", "decision-tree-entropy"]
    assert len(lines) == 3 and all("ran in" in line for line in lines)
    pages = {p.relative_to(built.folder).as_posix() for p in _html_files(built.folder)}
    assert pages == {"index.html", "errata.html", *(f"lessons/{n}.html" for n in order)}
    index = _parse(built.index)
    assert list(dict.fromkeys(link for link in index.links if link.startswith("lessons/"))) == [
        f"lessons/{n}.html" for n in order]
    for i, name in enumerate(order):  # previous / next in the notes' order, and the catalogue
        page = _parse(built.page(name))
        assert "../index.html" in page.links
        assert (f"{order[i - 1]}.html" in page.links) == (i > 0)
        assert (i + 1 < len(order)) == (f"{order[i + 1] if i + 1 < len(order) else ''}.html"
                                        in page.links)


def test_every_link_and_image_resolves_offline(book):
    built, _ = book
    checked = 0
    for path in _html_files(built.folder):
        page = _parse(path)
        assert page.scripts == 0, f"{path.name} needs JavaScript"
        for link in page.links + page.images:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, f"{path.name} links off the book: {link}"
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            assert target.is_file(), f"{path.name}: {link} does not resolve"
            assert built.folder.resolve() in target.parents
            if parts.fragment and target.suffix == ".html":
                assert parts.fragment in _parse(target).ids, f"{path.name}: {link} has no target"
            checked += 1
    assert checked > 40


def test_the_errata_links_reach_their_entries(book):
    built, _ = book
    page = built.page("decision-tree-entropy").read_text(encoding="utf-8")
    assert re.findall(r'href="\.\./errata\.html#(erratum-\d+)"', page)[:2] == ["erratum-1",
                                                                                "erratum-2"]
    errata = _parse(built.folder / "errata.html")
    assert {f"erratum-{n}" for n in range(1, 17)} <= errata.ids
    assert "lessons/decision-tree-entropy.html" in errata.links  # "cited by"


def test_every_figure_is_a_real_png_and_every_run_figure_is_shown(book):
    built, _ = book
    for name in built.names:
        page = built.page(name)
        images = _parse(page).images
        saved = sorted((built.folder / "runs" / name).glob("report-*.png"))
        assert sorted(img.rsplit("/", 1)[1] for img in images) == [p.name for p in saved]
        for src in images:
            data = (page.parent / src).read_bytes()
            assert data[:8] == PNG and data[12:16] == b"IHDR"
            width, height = struct.unpack(">II", data[16:24])
            assert width > 100 and height > 100 and len(data) > 2000
    assert len(_parse(built.page("binary-sigmoid")).images) == 1  # history.png
    assert _parse(built.page("decision-tree-entropy")).images == []  # a lesson of tables
    assert len(_parse(built.index).images) == 2  # the thumbnails of the two that draw


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path


def test_the_numbers_on_each_page_are_the_runs_report(book):
    built, _ = book
    for name in built.names:
        report = json.loads((built.folder / "runs" / name / "report.json").read_text())
        shown = _parse(built.page(name)).numbers
        assert shown, name
        for path, value, text in shown:
            assert numbers.lookup(report, path) == value, (name, path)
            assert text.strip() == numbers.text(value), (name, path)
        covered = {tuple(path) for path, _, _ in shown}
        for section in ("metrics", "details", "timing"):
            for leaf in _leaves(report[section], (section,)):
                assert any(leaf[:len(c)] == c for c in covered), f"{name}: {leaf} not shown"
    single = {tuple(p): t for p, _, t in _parse(built.page("single-neuron")).numbers}
    assert single[("details", "z")] == "2.6000" and single[("details", "output")] == "0.9309"
    epochs = json.loads((built.folder / "runs" / "binary-sigmoid" / "run.json").read_text())
    assert epochs["options"]["epochs"] == 3  # 60 × 0.05
    page = built.page("binary-sigmoid").read_text(encoding="utf-8")
    assert "python -m recipes.run binary-sigmoid --epochs 3 --no-export" in page


def test_a_second_build_reuses_the_runs_and_reruns_what_changed(book, tmp_path):
    built, _ = book
    folder = tmp_path / "book"
    shutil.copytree(built.folder, folder)
    before = (folder / "runs" / "single-neuron" / "report.json").read_text()
    lines = []
    started = time.perf_counter()
    again = site.build(folder, NAMES, SCALE, log=lines.append)
    assert time.perf_counter() - started < 5
    assert all("reused" in line for line in lines)
    assert (folder / "runs" / "single-neuron" / "report.json").read_text() == before
    assert _parse(again.page("binary-sigmoid")).numbers == _parse(built.page("binary-sigmoid")).numbers
    assert "Reused from the build of" in again.page("binary-sigmoid").read_text()
    lines.clear()  # other epochs: binary-sigmoid runs again; the others take no --epochs
    site.build(folder, ["binary-sigmoid", "single-neuron"], 0.1, log=lines.append)
    assert [line.split(":")[0].split()[-1] for line in lines if "ran in" in line] == [
        "binary-sigmoid"]
    report = json.loads((folder / "runs" / "binary-sigmoid" / "report.json").read_text())
    assert report["details"]["epochs_run"] == 6
    assert not (folder / "lessons" / "decision-tree-entropy.html").exists()  # left the book
    assert sorted(p.name for p in (folder / "lessons").iterdir()) == [
        "binary-sigmoid.html", "single-neuron.html"]


def test_bad_input_is_one_paragraph_and_a_usage_status(tmp_path, capsys):
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("mine")
    cases = [
        (["--only", "single-nueron"], "Did you mean 'single-neuron'"),
        (["--only", ","], "`--only` names no recipe"),
        (["--epochs-scale", "0"], "`--epochs-scale` must be a number in (0, 10]"),
        (["--epochs-scale", "x"], "Received: --epochs-scale=x"),
        (["--output", str(stranger)], "holds files that are not a lesson book"),
        (["--output", str(stranger / "keep.txt")], "is a file, not a folder"),
    ]
    for words, said in cases:
        output = [] if "--output" in words else ["--output", str(tmp_path / "new")]
        assert main([*words, *output]) == 2, words
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err and err.count("\n") == 1, (words, err)
    assert not (tmp_path / "new").exists()
    assert [p.name for p in stranger.iterdir()] == ["keep.txt"]


def test_every_page_renders_in_headless_chromium(book, tmp_path):
    built, _ = book
    if not (Path(CHROMIUM).exists() and _has_playwright()):
        message = (f"the browser test needs {CHROMIUM} (`apt-get install -y chromium`) and "
                   "Playwright (`pip install -e '.[test]'`)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    pages = _html_files(built.folder)
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
            args=BROWSER_FLAGS, viewport={"width": 1100, "height": 800})
        try:
            for path in pages:
                tab = browser.new_page()
                tab.on("console", lambda m, p=path: m.type == "error" and problems.append(
                    f"{p.name}: console error {m.text}"))
                tab.on("pageerror", lambda e, p=path: problems.append(f"{p.name}: {e}"))
                tab.on("requestfailed", lambda r, p=path: problems.append(
                    f"{p.name}: could not load {r.url}"))
                tab.goto(path.as_uri(), wait_until="load")
                images = tab.evaluate(
                    "[...document.images].map(i => [i.getAttribute('src'), i.complete, "
                    "i.naturalWidth])")
                assert len(images) == len(_parse(path).images)
                problems.extend(f"{path.name}: image {src} not loaded"
                                for src, done, width in images if not (done and width > 0))
                assert tab.title().endswith("nn-recipes lesson book")
                shot = tmp_path / f"{path.stem}.png"
                tab.screenshot(path=str(shot), full_page=True)
                assert shot.read_bytes()[:8] == PNG and shot.stat().st_size > 10_000
                tab.close()
        finally:
            browser.close()
    assert problems == []
    assert len(list(tmp_path.glob("*.png"))) == len(pages) == 5


def _has_playwright():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True
