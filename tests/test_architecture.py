"""The shape of the package: recipes read as Keras code, layers import what they may.

These tests read the source (with `ast`) or start clean child processes, so they
hold for every module the day it is added.
"""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from models import tensorflow_internals
from recipes.core import registry

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "recipes")


def _modules():
    """`{dotted name: path}` of every module of the package's two top-level folders."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path):
    """The package modules that the file at `path` imports, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in named if name in MODULES}


def test_every_training_recipe_builds_a_sequential_compiles_and_fits():
    training = [name for name in registry.names() if "epochs" in registry.get(name).options]
    assert len(training) >= 12
    for name in training:
        recipe = registry.get(name)
        source = Path(sys.modules[recipe.module].__file__).read_text(encoding="utf-8")
        function = next(node for node in ast.walk(ast.parse(source))
                        if isinstance(node, ast.FunctionDef) and node.name == recipe.run.__name__)
        body = ast.get_source_segment(source, function)
        assert recipe.run.__name__ == name.replace("-", "_"), name
        assert "keras.Sequential(" in body, f"{name}: no keras.Sequential in {recipe.run.__name__}"
        assert re.search(r"\.compile\(\s*optimizer=", body), f"{name}: no model.compile(optimizer=...)"
        assert re.search(r"run\.fit(_each)?\(", body), f"{name}: does not train with run.fit"


def test_no_module_imports_tensorflow_internals_but_the_wrapper():
    offenders = []
    for name, path in MODULES.items():
        if name == "models.tensorflow_internals":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"tensorflow\.(python|core)\b", text):
            offenders.append(name)
    assert offenders == []
    wrapper = MODULES["models.tensorflow_internals"].read_text(encoding="utf-8")
    for module in tensorflow_internals.PRIVATE_MODULES:
        assert module in wrapper


_WITHOUT_PRIVATE_TENSORFLOW = """
import importlib, json, pkgutil, sys
import tensorflow  # its own start-up uses its internals; ours may not
from models import tensorflow_internals
for name in tensorflow_internals.PRIVATE_MODULES:
    sys.modules[name] = None  # `import_module(name)` now raises ImportError
import models, recipes
for package in (models, recipes):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name != "recipes.__main__":
            importlib.import_module(info.name)
from recipes.run import main
status = main(["binary-sigmoid", "--epochs", "3", "--output-dir", sys.argv[1],
               "--report", sys.argv[1] + "/report.json"])
from models import zoo
model = zoo.load("binary-sigmoid", model_dir=sys.argv[1])
print("RESULT", json.dumps({"status": status, "backend": model.backend,
                            "classes": list(map(str, model.predict([[10.0] * 30] * 2)))}))
"""


def test_a_recipe_trains_and_exports_with_the_private_modules_unimportable(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PRIVATE_TENSORFLOW, str(tmp_path)], cwd=ROOT,
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    assert result["status"] == 0 and len(result["classes"]) == 2
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["details"]["epochs_run"] == 3 and report["metrics"]["accuracy"] > 0.5
    metadata = json.loads((tmp_path / "binary-sigmoid" / "1" / "metadata.json").read_text())
    # Without the freezing call there is no ONNX file, said in the metadata; the zoo runs the SavedModel.
    assert metadata["onnx"]["file"] is None
    assert "convert_to_constants" in metadata["onnx"]["error"]
    assert result["backend"] == "savedmodel"


def test_the_fallbacks_are_the_public_behaviour():
    import contextlib

    saved = {name: sys.modules.get(name) for name in tensorflow_internals.PRIVATE_MODULES}
    try:
        for name in tensorflow_internals.PRIVATE_MODULES:
            sys.modules[name] = None
        assert isinstance(tensorflow_internals.call_options(), contextlib.nullcontext)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    assert not isinstance(tensorflow_internals.call_options(), contextlib.nullcontext)


def _cycle(graph):
    """One import cycle of `graph` (`{module: imported modules}`) as a list, or `None`."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_cycle_among_the_package_modules():
    graph = {name: _imports(path) - {name} for name, path in MODULES.items()}
    assert sum(map(len, graph.values())) > 40  # the graph was read
    assert _cycle(graph) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check works


def test_layers_import_only_what_their_docstrings_allow():
    graph = {name: _imports(path) for name, path in MODULES.items()}
    for name, imported in graph.items():
        if name.startswith("models."):
            assert not any(m.startswith("recipes") for m in imported), name
        if name.startswith("models.data"):
            assert imported <= {"models.data", "models.data.bundled", "models.data.tables",
                                "models.data.prepared", "models.data.encoding", "models.data.dataset",
                                "models.export.layout"}, name
        if name.startswith("models.lessons"):
            assert not any(m.startswith(("models.export", "models.serve", "models.zoo"))
                           for m in imported), name
    serving = {"models.serving", "models.serving.store", "models.serving.signatures",
               "models.serving.json_tensor", "models.serving.rest", "models.serving.grpc_api"}
    readers = ("models.zoo", "models.serve", "models.predict", "models.export.layout", *sorted(serving))
    for name in readers:
        allowed = {"models", "models.zoo", "models.export.layout", "models.export"} | serving
        assert {m for m in graph[name] if m.startswith("models")} <= allowed | {name}, name


def test_the_readers_import_no_tensorflow():
    code = ("import sys\nimport models.zoo, models.serve, models.predict, models.export.layout\n"
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


_CITATION = re.compile(r"ERRATA #(\d+)")


def _shipped_text_files():
    for folder in ("models", "recipes", "tests", "scripts"):
        yield from (ROOT / folder).rglob("*.py")
    yield from ROOT.glob("*.md")
    yield ROOT / "saved_models" / "README.md"


def test_every_errata_citation_resolves_to_an_entry():
    entries = {int(n) for n in re.findall(r"^## (\d+)\. ", (ROOT / "ERRATA.md").read_text(), re.M)}
    assert entries == set(range(1, len(entries) + 1)) and len(entries) >= 16
    cited = {}
    for path in _shipped_text_files():
        for number in _CITATION.findall(path.read_text(encoding="utf-8")):
            cited.setdefault(int(number), path)
    assert len(cited) >= 10
    assert {n: str(p) for n, p in cited.items() if n not in entries} == {}


def test_docs_cite_only_what_ships():
    """Every Markdown file a shipped file names is in the repository (the course's own notes and
    the team's pages are not: the package cites its ERRATA.md), and no line cites a number of
    the project's tracker, which a reader of the package does not have. A path into another
    project (`g3doc/serving_config.md` of TensorFlow Serving) is not a file of ours."""
    markdown = re.compile(r"(?<![\w/.-])[\w.-]+\.md\b")
    tracker = re.compile(r"\b[Ii]ssue\s+#?[0-9]+")
    shipped = {p.name for p in ROOT.rglob("*.md") if ".git" not in p.parts}
    found = []
    for path in _shipped_text_files():
        if path == Path(__file__):  # its own examples below
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            missing = [name for name in markdown.findall(line) if name not in shipped]
            if missing or tracker.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
    assert markdown.findall("see ERRATA.md, GUIDE.md, g3doc/x.md") == ["ERRATA.md", "GUIDE.md"]
    cited = " ".join(["as in", "issue", "12"])  # spelled in parts: this file is read too
    assert tracker.search(cited) and not tracker.search("an issue with 3 rows")
