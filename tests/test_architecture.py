"""The layout docs/architecture.md promises: no module-level import cycle among the packages.

Imports inside functions are the documented way to defer heavy libraries (``genre --help``
stays instant), so only the imports a module runs when it is first imported are followed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cli", "midigenre", "audiogenre", "shared")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


def _module_level_imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports when it is imported: its top-level statements, the
    bodies of its classes, of ``if``/``try``/``with`` blocks; not functions, not ``if TYPE_CHECKING``."""

    def resolve(dotted: str) -> str | None:
        while dotted:
            if dotted in mods:
                return dotted
            dotted = dotted.rpartition(".")[0]
        return None

    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.dump(child.test):
                visit_list(child.orelse)
                continue
            if isinstance(child, ast.Import):
                found.update(filter(None, (resolve(a.name) for a in child.names)))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    for _ in range(child.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                for a in child.names:  # ``from pkg import submodule`` imports the submodule
                    full = f"{base}.{a.name}"
                    hit = full if full in mods else resolve(base)
                    if hit:
                        found.add(hit)
            visit(child)

    def visit_list(nodes) -> None:
        for n in nodes:
            visit(ast.Module(body=[n], type_ignores=[]))

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    found.discard(name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), plus self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _module_level_imports(name, path, mods) for name, path in mods.items()}


def test_no_module_level_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "cli.main" in graph and "midigenre.dataset" in graph  # the walk found the packages
    cycles = _cycles(graph)
    described = ["; ".join(f"{m} → {', '.join(sorted(graph[m] & set(c)))}" for m in c) for c in cycles]
    assert not cycles, "module-level import cycles (move the shared piece to the module both need):\n" + "\n".join(described)


def test_the_cycle_check_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_walk_reads_module_level_imports_only(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from p.b import x\nfrom . import c\n"
                              "def f():\n    from p import d\n"
                              "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import p.e\n"
                              "try:\n    import p.f\nexcept ImportError:\n    pass\n")
    mods = {"p": pkg / "__init__.py", **{f"p.{n}": pkg / f"{n}.py" for n in "abcdef"}}
    assert _module_level_imports("p.a", pkg / "a.py", mods) == {"p.b", "p.c", "p.f"}


def test_the_imports_go_the_documented_way():
    """docs/architecture.md's table: cli → the paths → shared, never back; the symbolic path
    imports no audio code."""
    graph = import_graph()
    for name, deps in graph.items():
        top, tops = name.split(".")[0], {d.split(".")[0] for d in deps}
        if top != "cli":
            assert "cli" not in tops, f"{name} imports the command line"
        if top == "shared":
            assert not tops & {"midigenre", "audiogenre"}, f"{name} imports a path"
        if top == "midigenre":
            assert "audiogenre" not in tops, f"{name} imports the audio path"
