"""ferkit's layer order (docs/architecture.md), checked on every import statement of the package.

Rules: (1) every ferkit module belongs to one layer; (2) a module imports only from its own layer or lower ones,
including imports inside functions (``if TYPE_CHECKING:`` blocks are annotations only and are skipped); (3) no two
modules import each other, directly or through others, and no two top-level packages do either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ferkit"

#: lowest first; a unit is a top-level module or package of ferkit
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("errors", "labels", "config", "constants", "device", "checkpoint", "image", "paths")),
    ("nn", ("nn",)),
    ("assets", ("hub", "convert", "clip")),
    ("data", ("data",)),
    ("models", ("models", "detect")),
    ("evaluation", ("evaluation", "export")),
    ("train", ("train",)),
    ("apps", ("infer", "explain")),
    ("serve", ("serve",)),
    ("cli", ("cli", "__main__")),
]
#: what a module below the CLI may take from the ``ferkit`` package itself (its ``__init__`` is a lazy facade over
#: every layer)
ROOT_NAMES_ALLOWED = {"__version__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _skip_type_checking(tree: ast.AST) -> list[ast.AST]:
    """All nodes, leaving out the bodies of ``if TYPE_CHECKING:``."""
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, str]]:
    """``(target module, imported name or '')`` for every ferkit import in the file."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in _skip_type_checking(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {(a.name, "") for a in node.names if a.name.split(".")[0] == "ferkit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ferkit":
                continue
            for alias in node.names:  # `from ferkit.x import y` where y is a module imports that module
                sub = f"{target}.{alias.name}"
                found.add((sub, "") if sub in modules else (target, alias.name))
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer_of() -> dict[str, int]:
    return {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


def _graph() -> dict[str, set[tuple[str, str]]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    layer = _layer_of()
    missing = sorted({_unit(m) for m in _modules() if _unit(m) and _unit(m) not in layer})
    assert not missing, f"add these to LAYERS here and in docs/architecture.md: {missing}"


def test_imports_go_down_the_layers():
    layer = _layer_of()
    bad = []
    for src, targets in _graph().items():
        if not _unit(src):
            continue  # ferkit/__init__.py: the lazy facade
        for target, name in targets:
            if target == "ferkit":  # the facade reaches every layer: only the top one may use it
                if name not in ROOT_NAMES_ALLOWED and layer[_unit(src)] != len(LAYERS) - 1:
                    bad.append(f"{src} takes {name!r} from the ferkit facade (import it from its module)")
                continue
            if layer[_unit(target)] > layer[_unit(src)]:
                bad.append(f"{src} ({LAYERS[layer[_unit(src)]][0]}) imports {target} "
                           f"({LAYERS[layer[_unit(target)]][0]})")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_modules():
    edges = {src: {t for t, _ in targets if t != "ferkit" and t != src} for src, targets in _graph().items()}
    assert _cycles(edges) == []


def test_no_import_cycles_between_packages():
    edges: dict[str, set[str]] = {}
    for src, targets in _graph().items():
        if _unit(src):
            edges.setdefault(_unit(src), set()).update(_unit(t) for t, _ in targets if _unit(t) not in ("", _unit(src)))
    assert _cycles(edges) == []


@pytest.mark.parametrize("source, expected", [
    ("from ferkit.models import create_model\n", {("ferkit.models", "create_model")}),
    ("def f():\n    from ferkit.cli import main\n", {("ferkit.cli.main", "")}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ferkit.cli import main\n", set()),
    ("from .. import labels\n", {("ferkit.labels", "")}),
])
def test_the_checker_sees_imports(tmp_path, source, expected):
    """The parser finds function-level and relative imports and skips annotation-only ones."""
    path = tmp_path / "mod.py"
    path.write_text(source)
    modules = {"ferkit.cli.main": path, "ferkit.labels": path, "ferkit.data.x": path}
    assert _imports("ferkit.data.x", path, modules) == expected


def test_the_checker_catches_an_upward_import(monkeypatch):
    """Break the rule on purpose: a data module importing the trainer is reported."""
    real = _graph()
    fake = dict(real, **{"ferkit.data.subsets": real["ferkit.data.subsets"] | {("ferkit.train.trainer", "")}})
    monkeypatch.setitem(globals(), "_graph", lambda: fake)
    with pytest.raises(AssertionError, match=r"ferkit.data.subsets \(data\) imports ferkit.train.trainer"):
        test_imports_go_down_the_layers()
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
