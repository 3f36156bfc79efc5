"""Imports inside src/ only point down: no cycle between two modules, nor between two packages of src/
(src/eval, src/deploy, ...; a top-level module such as src/atomic.py counts as its own package).

Every import statement counts, also those inside functions: a lazy import hides a cycle from Python, not
from the reader. The graph is read with ast, so nothing is imported.
"""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def module_name(path):
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def imported(tree, known):
    """The src modules a parsed file imports (``from src.pkg import mod`` names the module mod)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in known else node.module for name in names]
        else:
            continue
        for name in names:
            while name and name not in known:  # import src.a.b.c -> the deepest module that exists
                name = name.rpartition(".")[0]
            if name.startswith("src"):
                found.add(name)
    return found


def import_graph():
    known = modules()
    return {name: imported(ast.parse(path.read_text(encoding="utf-8")), known) - {name}
            for name, path in known.items()}


def package_of(name):
    parts = name.split(".")
    return ".".join(parts[:2])  # src.eval.evaluate -> src.eval; src.atomic -> src.atomic


def package_graph(graph):
    out = {}
    for name, targets in graph.items():
        edges = out.setdefault(package_of(name), set())
        edges.update(package_of(t) for t in targets if package_of(t) != package_of(name))
    return out


def cycles(graph):
    """One cycle (as a list of nodes, first == last) per strongly connected component with a cycle."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):  # Tarjan's algorithm; the graph has well under a thousand nodes
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
                found.append(path_within(graph, set(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def path_within(graph, component):
    """A concrete cycle through the first node of ``component``, for the failure message."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for target in sorted(graph.get(node, ())):
                if target == start:
                    return paths[node] + [start]
                if target in component and target not in paths:
                    paths[target] = paths[node] + [target]
                    nxt.append(target)
        frontier = nxt
    return sorted(component)


def describe(found):
    return "; ".join(" -> ".join(cycle) for cycle in found)


def test_no_cycle_between_modules():
    found = cycles(import_graph())
    assert not found, f"import cycles between modules of src/: {describe(found)}"


def test_no_cycle_between_packages():
    found = cycles(package_graph(import_graph()))
    assert not found, f"import cycles between packages of src/: {describe(found)}"


def test_the_checker_sees_a_cycle():
    graph = {"src.a.x": {"src.b.y"}, "src.b.y": {"src.b.z"}, "src.b.z": {"src.a.w"}, "src.a.w": set()}
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == [["src.a", "src.b", "src.a"]]
    graph["src.a.w"] = {"src.a.x"}
    assert cycles(graph) == [["src.a.w", "src.a.x", "src.b.y", "src.b.z", "src.a.w"]]


def test_function_level_imports_count():
    known = {"src", "src.a", "src.a.m"}
    tree = ast.parse("def f():\n    from src.a import m\n    import src.a.m.thing\n")
    assert imported(tree, known) == {"src.a.m"}
