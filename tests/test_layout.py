"""The layout the design fixes: every package installed, no import circle, moved paths that say where they went."""

from __future__ import annotations

import ast
import importlib
import sys
import tomllib
from pathlib import Path

import pytest

from solvable._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"solvable": "solvable", "theory": "solvable.theory", "sims": "solvable.sims",
          "proofs_checks": "solvable.proofs_checks", "figures": "solvable.figures"}


def _modules() -> dict[str, Path]:
    """Every module of the layers, by its installed dotted name."""
    out = {}
    for folder, package in LAYERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package,) + parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the layers that ``name`` imports anywhere in its file (late imports in functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c in modules and c != name)
    return found


def test_every_package_folder_is_installed():
    # an editable install finds a folder pyproject does not list; a wheel silently leaves it out
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert on_disk == listed


def test_no_import_circle():
    """Files import down, never back (a shared helper lives in a module both import). A package's ``__init__``
    may import its own modules; an edge *into* a package face from inside it is a circle like any other."""
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_moved_path_names_its_new_home(old):
    new = f"solvable.{MOVED[old]}"
    importlib.import_module(new)
    with pytest.raises(ModuleNotFoundError, match=new.replace(".", r"\.")):
        importlib.import_module(f"solvable.{old}")
    package, _, leaf = f"solvable.{old}".rpartition(".")
    with pytest.raises(ImportError, match=new.replace(".", r"\.")):
        exec(f"from {package} import {leaf}", {})


def test_no_module_over_500_lines():
    """Split by idea before a file outgrows one reading (the design's limit)."""
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > 500}
    assert long == {}
