"""The module graph is acyclic and layered: records, models/flops <- spaces, data, trainer <-
search, analysis <- studies <- CLIs; records import nothing of the project but `common`;
analysis reads records, never search, and imports no trainer.

`python tests/test_layers.py` prints every project-internal import edge."""
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = [  # (prefix, layer); the longest matching prefix decides
    ("mfsearch", 1),   # the package facade: re-exports the public API of layers 0 and 1 (export, latency)
    ("mfsearch.common", 0), ("mfsearch.evaluation", 0), ("mfsearch.records", 0),
    ("mfsearch.models", 0), ("mfsearch.flops", 0),
    ("spaces", 1), ("mfsearch.data", 1), ("mfsearch.zero_cost", 1), ("mfsearch.train", 1),
    ("mfsearch.export", 1), ("mfsearch.latency", 1), ("mfsearch.profile", 1), ("mfsearch.detection", 1),
    ("mfsearch.search", 2), ("mfsearch.analysis", 2),
    ("mfsearch.studies", 3),
    ("mfsearch.cli", 4), ("search", 4), ("analyze", 4),
]
ANALYSIS_MAY_NOT = ("mfsearch.train", "mfsearch.zero_cost", "mfsearch.search", "mfsearch.studies")
RECORDS_MAY = ("mfsearch.records", "mfsearch.common")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    files = [*REPO.glob("mfsearch/**/*.py"), *REPO.glob("spaces/*.py"), REPO / "search.py", REPO / "analyze.py"]
    modules = {module_name(f): f for f in files}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_lines(tree)  # annotations only: not a runtime dependency
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, path.name == "__init__.py", node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def layer(mod: str) -> int:
    return max((p for p in LAYERS if mod == p[0] or mod.startswith(p[0] + ".")), key=lambda p: len(p[0]))[1]


def test_no_import_cycles():
    graph, state, stack = import_graph(), {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"
    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_layers_point_one_way():
    # the package __init__ may be imported by anyone (importing mfsearch.x runs it), so only
    # edges *into* it are exempt; what it imports itself must sit in layer 0
    wrong = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
             for a, targets in import_graph().items() for b in targets
             if layer(b) > layer(a) and b != "mfsearch"]
    assert not wrong, "\n".join(wrong)


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for n in graph[todo.pop()] - seen:
            seen.add(n)
            todo.append(n)
    return seen


def test_search_never_imports_studies_and_analysis_no_trainer():
    graph = import_graph()
    for a, targets in graph.items():
        if a.startswith("mfsearch.search"):
            assert not any(b.startswith(("mfsearch.studies", "mfsearch.cli")) for b in targets), a
        if a.startswith("mfsearch.analysis"):
            for b in closure(graph, a):  # not even through another module
                assert not b.startswith(ANALYSIS_MAY_NOT), f"{a} reaches {b}"
        if a.startswith("mfsearch.records"):  # the lowest layer: the package facade is not even reached
            assert all(b.startswith(RECORDS_MAY) for b in closure(graph, a)), f"{a} reaches {closure(graph, a)}"
        if a.startswith("spaces"):
            assert not any(b.startswith(("mfsearch.search", "mfsearch.train")) for b in targets), a


if __name__ == "__main__":
    for mod, targets in sorted(import_graph().items()):
        print(f"{mod} [layer {layer(mod)}] -> {', '.join(sorted(targets)) or '-'}")
    sys.exit(0)
