"""The package's layers: every import goes down, and no module imports itself back (docs/design/architecture.md).

Imports are read with ``ast`` from every module, imports inside functions included (an import
hidden in a function to dodge a cycle is still an edge), relative imports resolved.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "srhm_datasets"

#: Layers, lowest first. A module belongs to the layer of its longest listed prefix; a module
#: may import from its own layer or any lower one. The package root and the command modules
#: form the top layer: nothing inside the package imports them.
LAYERS = {
    "facts": ["version", "config", "prng", "catalog", "hashing", "files", "protocol", "results", "executors", "pools"],
    "core": ["sampler", "rules", "generate", "perturb", "probe", "provenance", "tasks"],
    "inference": ["inference", "correlations", "bayes_optimal"],
    "release": ["release"],
    "torch": ["torch_data", "torch"],
    "baselines": ["baselines"],
    "evaluation": ["evaluation"],
    "sweep": ["sweep"],
    "commands": [
        "",
        "cli_args",
        "cli",
        "__main__",
        "demo",
        "optimal",
        "release.cli",
        "baselines.cli",
        "evaluation.cli",
        "sweep.cli",
    ],
}
RANK = {prefix: rank for rank, prefixes in enumerate(LAYERS.values()) for prefix in prefixes}
NAMES = list(LAYERS)


def module_name(path: Path) -> str:
    """``srhm_datasets/release/load.py`` -> ``release.load``; the package root is ``""``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    """Rank of ``module``'s layer (longest listed prefix); KeyError for a module no layer claims."""
    parts = module.split(".") if module else []
    for n in range(len(parts), -1, -1):
        prefix = ".".join(parts[:n])
        if prefix in RANK and (n > 0 or not parts):
            return RANK[prefix]
    raise KeyError(module)


def imports(module: str) -> set[str]:
    """Package modules that ``module`` imports anywhere in its body (resolved, deepest existing module)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "srhm_datasets":
                target = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}" if target else alias.name
                found.add(child if child in MODULES else target)
        elif isinstance(node, ast.Import):
            found |= {a.name.partition(".")[2] for a in node.names if a.name.split(".")[0] == "srhm_datasets"}
    found.discard(module)
    return {m for m in found if m in MODULES}


def test_every_module_has_a_layer():
    unplaced = []
    for module in MODULES:
        try:
            layer(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"


def test_imports_go_down():
    upward = [
        f"{a or 'srhm_datasets'} ({NAMES[layer(a)]}) imports {b or 'srhm_datasets'} ({NAMES[layer(b)]})"
        for a in MODULES
        for b in imports(a)
        if layer(b) > layer(a)
    ]
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
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
                components.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return components


def test_no_import_cycle():
    graph = {m: imports(m) for m in MODULES}
    assert not strongly_connected(graph), strongly_connected(graph)


def test_the_checks_catch_what_they_guard():
    """The helpers see a planted cycle and a function-level upward import."""
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("release.load") < layer("evaluation.evaluate") < layer("release.cli") == layer("")
    assert "release.rules_file" in imports("")  # the root facade's import is seen
