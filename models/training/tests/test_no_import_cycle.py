"""The recipe's modules import each other without a cycle.

The import graph is read from the source (``ast``), so nothing is imported to build it.
Every import counts, also one inside a function: a lazy import hides a cycle from the
interpreter but not from a reader. Importing ``a.b.c`` runs the ``__init__`` of ``a`` and
``a.b`` first, so the graph also has an edge to each enclosing package, except the
packages that enclose the importing module itself (they are being imported already).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "foramen_train"


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package_dir``."""
    root = package_dir.parent
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that module ``name`` (file ``path``) imports."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # Relative: level 1 is the module's own package (the module itself for an __init__).
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [stem]
            # ``from pkg import sub`` imports the submodule ``pkg.sub``.
            targets += [f"{stem}.{alias.name}" for alias in node.names if f"{stem}.{alias.name}" in modules]
        for target in targets:
            for candidate in (*_parents(target), target):
                if candidate in modules and candidate != name and candidate not in _parents(name):
                    found.add(candidate)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    modules = module_names(package_dir)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_foramen_train_has_no_import_cycle():
    graph = import_graph(PACKAGE_DIR)
    assert "foramen_train.config" in graph and "foramen_train.gan.training" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_config_and_the_gan_import_in_one_direction_only():
    graph = import_graph(PACKAGE_DIR)
    gan = {name for name in graph if name == "foramen_train.gan" or name.startswith("foramen_train.gan.")}
    assert "foramen_train.gan.config" in graph["foramen_train.config"]
    assert not any("foramen_train.config" in graph[name] for name in gan)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "pkg"


def test_the_check_finds_a_lazy_cycle_through_a_subpackage(tmp_path):
    # The cycle this test guards against: config imports the gan package at the top, and
    # a gan module imports config inside a function.
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/config.py": "from .gan import GanConfig\n",
            "pkg/gan/__init__.py": "from .training import GanConfig\n",
            "pkg/gan/training.py": "class GanConfig: ...\n\ndef load():\n    from ..config import x\n",
        },
    )
    graph = import_graph(pkg)
    assert graph["pkg.gan.training"] == {"pkg.config"}
    assert find_cycle(graph) == ["pkg.config", "pkg.gan", "pkg.gan.training", "pkg.config"]


def test_the_check_follows_submodule_and_absolute_imports(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from . import b\n",
            "pkg/b.py": "import pkg.sub.c\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "from .. import a\n",
        },
    )
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.sub", "pkg.sub.c"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    (pkg / "sub" / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) is None
