"""The house rules of docs/architecture.md, checked on the source (no import is run).

* Rooms (subpackages and bottom modules) sit on floors; a module may import only
  modules of its own room or of a lower floor (no back-edge into a higher stage).
* The module import graph has no cycle (imports inside functions count too).
* No module over 800 lines; no function over 80 lines of code (its docstring not
  counted) or 10 parameters (``self``/``cls`` not counted).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tsocontainer

PKG = Path(tsocontainer.__file__).parent

#: room -> floor: a room imports only rooms on lower floors (none on its own floor but itself)
FLOORS = {
    "_version": 0, "errors": 0, "_disk": 0,
    "_util": 1, "registry": 1, "flags": 1, "modes": 1,
    "geometry": 2,
    "arrays": 3, "io": 3,
    "plotting": 4,
    "cleaning": 5,
    "lightcurves": 6,
    "spectra": 7, "sim": 7,
    "group": 8,
    "ramps": 9,
    "pipeline": 10,
}


def _modules() -> dict:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set:
    tree = ast.parse(path.read_text())
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
            else:
                base = []
            target = ".".join(base + ([node.module] if node.module else []))
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            # "from pkg import submodule" is an edge to the submodule, not to pkg/__init__
            others = len(subs) < len(node.names)
            for cand in subs + ([target] if others else []):
                if cand in modules and cand != name:
                    found.add(cand)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in modules and a.name != name:
                    found.add(a.name)
    # importing a.b.c also runs a/__init__ and a/b/__init__: those are not design edges
    return {m for m in found if m != "tsocontainer"}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_every_room_has_a_floor(graph):
    rooms = {_room(m) for m in graph} - {""}
    assert rooms <= set(FLOORS), f"rooms without a floor: {sorted(rooms - set(FLOORS))}"


def test_no_import_into_a_higher_floor(graph):
    bad = []
    for mod, targets in graph.items():
        room = _room(mod)
        if not room:   # the package __init__ (lazy public API) may name any room
            continue
        for t in targets:
            troom = _room(t)
            if troom != room and FLOORS[troom] >= FLOORS[room]:
                bad.append(f"{mod} -> {t} (floor {FLOORS[room]} -> {FLOORS[troom]})")
    assert not bad, "imports into a higher or equal floor:\n" + "\n".join(sorted(bad))


def test_no_import_cycle(graph):
    colour, stack, cycles = {}, [], []

    def visit(m):
        colour[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if colour.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in colour:
                visit(t)
        stack.pop()
        colour[m] = 2

    for m in sorted(graph):
        if m not in colour:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _code_lines(fn) -> int:
    body = fn.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
            and isinstance(first.value.value, str):
        if len(body) == 1:
            return 1
        first = body[1]
    start = min([first.lineno] + [d.lineno for d in fn.decorator_list])
    return fn.end_lineno - start + 1 + 1   # + the def line


def _n_params(fn) -> int:
    a = fn.args
    n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
    if (a.posonlyargs + a.args) and (a.posonlyargs + a.args)[0].arg in ("self", "cls"):
        n -= 1
    return n


def test_sizes():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(PKG.parent)
        if text.count("\n") > 800:
            bad.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if _code_lines(node) > 80:
                    bad.append(f"{rel}:{node.lineno} {node.name}: {_code_lines(node)} lines")
                if _n_params(node) > 10:
                    bad.append(f"{rel}:{node.lineno} {node.name}: {_n_params(node)} parameters")
    assert not bad, "too large:\n" + "\n".join(bad)


def test_the_checker_sees_a_cycle_and_a_back_edge(tmp_path):
    """The rules above can fail: a planted cycle and back-edge are found."""
    g = {"tsocontainer.cleaning.a": {"tsocontainer.group.b"},
         "tsocontainer.group.b": {"tsocontainer.cleaning.a"}}
    assert FLOORS["group"] > FLOORS["cleaning"]   # so cleaning -> group is a back-edge
    with pytest.raises(AssertionError, match="cycles"):
        test_no_import_cycle(g)
    with pytest.raises(AssertionError, match="higher"):
        test_no_import_into_a_higher_floor(g)


def test_no_import_cycle_in_benchmarks():
    """The benchmark scripts import each other without circles too (``_job.py`` dispatches)."""
    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    if not folder.is_dir():
        pytest.skip("no benchmarks folder beside the tests")
    names = {p.stem for p in folder.glob("*.py")}
    graph = {}
    for p in folder.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in names:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in names}
        graph[p.stem] = found - {p.stem}
    test_no_import_cycle(graph)
