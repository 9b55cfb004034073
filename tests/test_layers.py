"""The package layers of ``aries_lit``, checked on the source: no import runs back up the data flow,
and no two packages (or modules) import each other.

Layers, bottom to top (CONTRIBUTING.md, "Package layout", says what each holds). A module may
import its own package and the layers below its own, nothing else; packages that share a layer
may not import each other, except in the two layers marked ``shared`` (the neutral bottom,
``core`` and ``assets``, and the entry points), whose units may import each other without a cycle.

Every ``import`` and ``from ... import`` counts wherever it is written (module level, inside a
function or a class): a lazy import is still a dependency, it only runs later. Imports under
``if TYPE_CHECKING:`` do not count (they never run). Relative imports are resolved;
``from pkg import name`` is an import of the module ``pkg.name`` when there is one, else of
``pkg``. Importing a module runs its parent packages' ``__init__`` too, but that edge is not
counted (a package's ``__init__`` re-exporting its own modules is not a cycle).

The checker is plain ``ast`` (no dependency) and takes any package folder, so its own tests plant
an upward import and a cycle in a fake package and watch it fail.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "aries_lit"


@dataclass(frozen=True)
class Layer:
    name: str
    #: the top-level units (a subpackage, or a module ``aries_lit/<name>.py``) in this layer
    units: frozenset[str]
    #: whether different units of this layer may import each other (without a cycle)
    shared: bool = False


def layer(name: str, *units: str, shared: bool = False) -> Layer:
    return Layer(name, frozenset(units), shared)


#: ``aries_lit``'s layers, bottom to top. ``""`` is ``aries_lit/__init__.py``.
LAYERS = [
    layer("neutral", "", "assets", "core", shared=True),
    layer("models, records", "models", "records", "instructions"),
    layer("prompts", "prompts"),
    layer("answers", "answers"),
    layer("generators", "generators"),
    layer("selectors", "selectors"),
    layer("data", "data"),
    layer("losses", "losses"),
    layer("modules", "modules"),
    layer("evaluation", "evaluation"),
    layer("pipeline", "pipeline"),
    layer("entry points", "cli", "cli_config", "cli_functions", "commands", shared=True),
]


# --------------------------------------------------------------------------- the checker


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported module, dotted
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root.parent)}:{self.line}"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """``(dotted name, line)`` of every import in a module; ``from a import b`` gives ``a.b``
    (resolved against the known modules later) and ``a``."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[list[str], int]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append(([alias.name], node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".")
            base_parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            self.found.append(([f"{base}.{alias.name}", base], node.lineno))


def import_edges(root: Path) -> list[Edge]:
    """Every import of a module of the package ``root`` by a module of it (see the module docstring)."""
    modules = module_names(root)
    package = root.name
    edges = []
    for module, path in modules.items():
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for candidates, line in visitor.found:
            for name in candidates:
                if name != package and not name.startswith(package + "."):
                    break
                # the longest known module that ``name`` names (``a.b.Class`` -> ``a.b``)
                target = name
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target == name or candidates[-1] == name:
                    if target and target != module:
                        edges.append(Edge(module, target, path, line))
                    break
    return list(dict.fromkeys(edges))


def unit_of(module: str) -> str:
    """The top-level unit of a dotted module: ``aries_lit.data.views`` -> ``data``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layer_problems(root: Path, layers: list[Layer]) -> list[str]:
    """Every import that breaks the layers, every cycle between units and between modules."""
    level = {unit: (i, lay) for i, lay in enumerate(layers) for unit in lay.units}
    problems = []
    units = {unit_of(m) for m in module_names(root)}
    package = root.name
    for unit in sorted(units - set(level)):
        where = f"{package}/{unit}" if unit else f"{package}/__init__.py"
        problems.append(f"{where}: in no layer (add it to LAYERS in tests/test_layers.py)")
    edges = import_edges(root)
    unit_graph: dict[str, set[str]] = {}
    module_graph: dict[str, set[str]] = {}
    for edge in edges:
        module_graph.setdefault(edge.source, set()).add(edge.target)
        src, dst = unit_of(edge.source), unit_of(edge.target)
        if src == dst:
            continue
        unit_graph.setdefault(src, set()).add(dst)
        if src not in level or dst not in level:
            continue
        (src_level, src_layer), (dst_level, dst_layer) = level[src], level[dst]
        if dst_level > src_level:
            why = f"layer '{src_layer.name}' may not import the higher layer '{dst_layer.name}'"
        elif dst_level == src_level and not src_layer.shared:
            why = f"'{src}' and '{dst}' share the layer '{src_layer.name}' and may not import each other"
        else:
            continue
        problems.append(f"{edge.where(root)}: {edge.source} imports {edge.target}: {why}")
    for component in cycles(unit_graph):
        names = ", ".join(f"{package}.{u}" if u else package for u in component)
        problems.append(f"import cycle between packages: {names}")
    for component in cycles(module_graph):
        problems.append(f"import cycle between modules: {', '.join(component)}")
    return problems


# --------------------------------------------------------------------------- aries_lit itself


def test_aries_lit_follows_its_layers():
    problems = layer_problems(ROOT, LAYERS)
    assert not problems, "layer violations:\n" + "\n".join(problems)


def test_every_layer_unit_exists():
    """A unit named in LAYERS that no longer exists is a stale entry."""
    units = {unit_of(m) for m in module_names(ROOT)}
    stale = sorted(u for lay in LAYERS for u in lay.units if u not in units)
    assert not stale


def test_the_readme_layout_names_every_package_and_module():
    """The README's layout block lists every top-level package (``name/``) and module (``name.py``)."""
    readme = (ROOT.parent / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    listed = {line.split()[0] for line in block.splitlines() if line and not line[0].isspace()}
    packages = {p.name + "/" for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.name for p in ROOT.glob("*.py") if p.name != "__init__.py"}
    assert sorted((packages | modules) - listed) == []
    assert sorted(listed - (packages | modules)) == []


def test_the_checker_sees_aries_lit_imports():
    """Sanity: known edges are found, lazy (function-level) ones included."""
    edges = {(e.source, e.target) for e in import_edges(ROOT)}
    assert ("aries_lit.modules.policy", "aries_lit.data.collator") in edges
    assert ("aries_lit.pipeline.iterate", "aries_lit.evaluation") in edges  # inside a function
    assert ("aries_lit.commands", "aries_lit.models") in edges  # ``from aries_lit import models``


def test_the_tiny_tokenizer_corpus_is_the_paper_template():
    """The tiny tokenizer is trained on the paper's template (so tiny models tokenize it compactly),
    taken from the neutral ``paper_text`` module that ``prompts`` builds its templates from."""
    from aries_lit.models import tiny
    from aries_lit.prompts.templates import PAPER_TEMPLATE, TEMPLATES

    assert tiny.CORPUS_TEXT == PAPER_TEMPLATE == TEMPLATES["paper"]


def test_loading_prompts_imports_neither_torch_nor_the_training_data():
    """Prompt sources read files through ``records``: no ``aries_lit.data``, Lightning or torch."""
    code = (
        "import sys\n"
        "from aries_lit.prompts.sources import load_prompts\n"
        "assert len(load_prompts({'class_path': 'gsm8k', 'init_args': {'limit': 2}})) == 2\n"
        "print(sorted({'torch', 'lightning', 'aries_lit.data'} & set(sys.modules)))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_moved_names_stay_importable_from_their_old_homes():
    from aries_lit import records
    from aries_lit.core import chat, errors, model_paths, view_names
    from aries_lit.data import errors as data_errors
    from aries_lit.data import records as data_records
    from aries_lit.losses import base as loss_base
    from aries_lit.models import resolve_model_path
    from aries_lit.prompts import sources, templates

    for name in data_records.__all__:
        assert getattr(data_records, name) is getattr(records, name)
    assert data_errors.DataValidationError is errors.DataValidationError
    for name in chat.__all__:
        assert getattr(templates, name) is getattr(chat, name)
    for name in view_names.__all__:
        assert getattr(loss_base, name) is getattr(view_names, name)
    assert resolve_model_path is model_paths.resolve_model_path
    assert "arithmetic" in sources.PROMPT_SOURCES


# --------------------------------------------------------------------------- the checker can fail


FAKE_LAYERS = [
    layer("bottom", "", "util", shared=True),
    layer("low", "low"),
    layer("mid", "mid", "side"),
    layer("high", "high"),
]


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fake"
    base = {
        "__init__.py": "",
        "util.py": "",
        "low/__init__.py": "from fake.low.a import A\n",
        "low/a.py": "from fake import util\n\nclass A: ...\n",
        "mid/__init__.py": "",
        "mid/m.py": "from ..low import a\nfrom fake.low.a import A\n",
        "side/__init__.py": "",
        "high/__init__.py": "",
        "high/h.py": "import fake.mid.m\nfrom . import helper\n",
        "high/helper.py": "",
    }
    for name, text in {**base, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_clean_fake_package_passes(tmp_path):
    root = _fake_package(tmp_path, {})
    assert layer_problems(root, FAKE_LAYERS) == []
    edges = {(e.source, e.target) for e in import_edges(root)}
    assert ("fake.mid.m", "fake.low.a") in edges  # relative, resolved
    assert ("fake.high.h", "fake.high.helper") in edges  # ``from . import module``


def test_the_checker_catches_a_lazy_upward_import(tmp_path):
    root = _fake_package(tmp_path, {"low/b.py": "def f():\n    from fake.high import h\n    return h\n"})
    assert layer_problems(root, FAKE_LAYERS) == [
        "fake/low/b.py:2: fake.low.b imports fake.high.h: layer 'low' may not import the higher layer 'high'",
        # high imports mid, which imports low: the upward edge closes a cycle
        "import cycle between packages: fake.high, fake.low, fake.mid",
    ]


def test_the_checker_catches_a_relative_upward_import(tmp_path):
    root = _fake_package(tmp_path, {"low/c.py": "from ..mid.m import thing\n"})
    assert layer_problems(root, FAKE_LAYERS) == [
        "fake/low/c.py:1: fake.low.c imports fake.mid.m: layer 'low' may not import the higher layer 'mid'",
        "import cycle between packages: fake.low, fake.mid",
    ]


def test_the_checker_catches_a_sibling_import_and_an_unknown_unit(tmp_path):
    root = _fake_package(tmp_path, {"side/s.py": "import fake.mid\n", "extra.py": ""})
    problems = layer_problems(root, FAKE_LAYERS)
    assert problems == [
        "fake/extra: in no layer (add it to LAYERS in tests/test_layers.py)",
        "fake/side/s.py:1: fake.side.s imports fake.mid: "
        "'side' and 'mid' share the layer 'mid' and may not import each other",
    ]


def test_the_checker_catches_cycles(tmp_path):
    root = _fake_package(
        tmp_path,
        {
            # a module cycle inside one package
            "high/x.py": "from fake.high import y\n",
            "high/y.py": "def f():\n    from fake.high.x import g\n",
            # a package cycle in the shared bottom layer
            "util.py": "from fake.more import z\n",
            "more.py": "import fake.util\n",
        },
    )
    layers = [layer("bottom", "", "util", "more", shared=True), *FAKE_LAYERS[1:]]
    problems = layer_problems(root, layers)
    assert "import cycle between packages: fake.more, fake.util" in problems
    assert "import cycle between modules: fake.more, fake.util" in problems
    assert "import cycle between modules: fake.high.x, fake.high.y" in problems
    assert len(problems) == 3


def test_type_checking_imports_do_not_count(tmp_path):
    text = """\
        from typing import TYPE_CHECKING
        import typing

        if TYPE_CHECKING:
            from fake.high import h
        if typing.TYPE_CHECKING:
            import fake.mid.m
        else:
            import fake.high.helper
        """
    root = _fake_package(tmp_path, {"low/t.py": text})
    assert layer_problems(root, FAKE_LAYERS) == [
        "fake/low/t.py:9: fake.low.t imports fake.high.helper: "
        "layer 'low' may not import the higher layer 'high'",
        "import cycle between packages: fake.high, fake.low, fake.mid",
    ]


@pytest.mark.parametrize("text", ["import fake\n", "from fake import util\n", "from .. import util\n"])
def test_imports_of_the_bottom_are_allowed(tmp_path, text):
    root = _fake_package(tmp_path, {"high/b.py": text})
    assert layer_problems(root, FAKE_LAYERS) == []
