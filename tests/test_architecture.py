"""Architecture guards, read from the source: no import cycles, layering rules, no pickle loading, docstrings.

The import graph covers every module of ``explorer/`` and ``widgets/``: module-level and
function-level imports (relative ones resolved; imports under ``if TYPE_CHECKING:`` never run and
are left out). Importing ``a.b.c`` from outside the package ``a.b`` also runs ``a.b/__init__.py``,
so that counts as importing ``a.b`` too.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("explorer", "widgets")
#: modules under explorer/tasks/ hold task data and formats; the methods build on them, never the reverse
METHOD_PACKAGES = ("explorer.thoughts", "explorer.recurrent", "explorer.concepts")
PICKLE = re.compile(r"weights_only\s*=\s*False|allow_pickle\s*=\s*True")


# -- the import graph -------------------------------------------------------------------------------
def module_files(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file of ``packages`` under ``root``."""
    out = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node at any depth, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children = list(node.orelse)
        stack.extend(children)


def _known(name: str, modules: set[str]) -> str | None:
    """The longest prefix of dotted ``name`` that is one of ``modules``."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        cand = ".".join(parts[:n])
        if cand in modules:
            return cand
    return None


def imported_modules(module: str, source: str, modules: set[str], *, is_package: bool = False) -> set[str]:
    """The modules of ``modules`` that ``module`` (its source given) imports, directly or by running
    the ``__init__`` of a package on the way."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem for a in node.names]
        for name in names:
            target = _known(name, modules)
            if target is None:
                continue
            found.add(target)
            parts = target.split(".")
            for n in range(1, len(parts)):  # the packages imported on the way, unless we are inside them
                parent = ".".join(parts[:n])
                if parent in modules and not (module == parent or module.startswith(parent + ".")):
                    found.add(parent)
    found.discard(module)
    return found


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    files = module_files(root, packages)
    names = set(files)
    return {m: imported_modules(m, f.read_text(encoding="utf-8"), names, is_package=f.name == "__init__.py")
            for m, f in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, each importing the next, the last the first) per strongly
    connected component with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        comps.append(sorted(comp))
    return [_cycle_in(graph, set(c)) for c in sorted(comps)]


def _cycle_in(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    start = min(comp)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                return paths[v]
            if w in comp and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return sorted(comp)  # pragma: no cover - a component always has a cycle


def _show(cycle: list[str]) -> str:
    return " -> ".join(cycle + cycle[:1])


# -- the guards themselves --------------------------------------------------------------------------
def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"a"}, "f": {"g"}, "g": {"f"}}
    assert find_cycles(graph) == [["a", "b", "c"], ["f", "g"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _show(["a", "b"]) == "a -> b -> a"


def test_the_graph_reads_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""p."""\nfrom .a import x\n')
    (pkg / "a.py").write_text('"""a."""\nx = 1\n\ndef f():\n    from .sub import b\n    return b\n')
    (pkg / "sub" / "__init__.py").write_text('"""s."""\n')
    (pkg / "sub" / "b.py").write_text('"""b."""\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
                                      '    from ..a import x\n\ndef g():\n    from .. import a\n    import pkg.a\n')
    (pkg / "sub" / "c.py").write_text('"""c."""\nfrom pkg.sub.b import g\n')
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub", "pkg.sub.b"}, "pkg.sub": set(),
                     "pkg.sub.b": {"pkg.a"}, "pkg.sub.c": {"pkg.sub.b"}}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b"]]


# -- the rules on this repository -------------------------------------------------------------------
def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(_show(c) for c in cycles)


def test_layers():
    graph = import_graph()
    bad = [f"{m} imports {t}" for m, ts in sorted(graph.items()) for t in sorted(ts)
           if m.startswith("explorer") and t.split(".")[0] == "widgets"]
    bad += [f"{m} imports {t}" for m, ts in sorted(graph.items()) for t in sorted(ts)
            if m.startswith("explorer.tasks") and any(t == p or t.startswith(p + ".") for p in METHOD_PACKAGES)]
    assert not bad, "layering broken (explorer never imports widgets; explorer.tasks never imports a method " \
                    "package):\n" + "\n".join(bad)


def _source_files() -> list[Path]:
    files = [f for pkg in ("explorer", "widgets", "benchmarks") for f in (ROOT / pkg).rglob("*.py")]
    files += [f for f in (ROOT / "recipes").rglob("*") if f.is_file()]
    return sorted(files + list((ROOT / "docs").glob("*.py")))


def test_nothing_loads_pickles():
    hits = [f"{f.relative_to(ROOT)}:{i}: {line.strip()}" for f in _source_files()
            for i, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if PICKLE.search(line)]
    assert not hits, "pickle loading (use torch.load(..., weights_only=True) / np.load without pickles):\n" + \
        "\n".join(hits)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_module_says_what_it_holds(pkg):
    missing = [str(f.relative_to(ROOT)) for f in sorted((ROOT / pkg).rglob("*.py"))
               if not (ast.get_docstring(ast.parse(f.read_text(encoding="utf-8"))) or "").strip()]
    assert not missing, "modules without a docstring saying what they hold:\n" + "\n".join(missing)
