"""The package map is the dependency map: imports between agentsim's packages form no cycle and
only point down the layers below. Every import counts, including those inside functions (a
deferred import is still a dependency); plugins loaded by name through the registry are not
imports."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import agentsim

PACKAGE = Path(agentsim.__file__).parent
# Lowest first. A package may import only packages of lower layers. A new package must be
# placed here, which is the point: where it sits is a design decision.
LAYERS: list[set[str]] = [
    {"_version", "errors", "_aio"},
    {"registry", "resources"},
    {"stats", "scenario"},
    {"labels", "models", "agents"},
    {"core", "testing"},
    {"orchestrator"},
    {"mitigations", "judges"},
    {"analysis", "runs", "importers"},
    {"executors", "finetune", "report", "tables"},  # workers run conversations with the
    # runner's code; the HTML report and the papers' tables read runs, judges' records and the
    # comparison of cells
    {"api"},
    {"studies"},  # a study file is turned into the API's run settings and run through it
    {"cli", "__init__"},  # the package itself re-exports the public API
    {"__main__"},
]
LAYER_OF = {name: index for index, names in enumerate(LAYERS) for name in names}


def _unit(module: str) -> str:
    """The package-level node of a dotted module name (agentsim.core.events → core)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every agentsim module that ``path`` imports, at any depth of its code."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            folder = PACKAGE.parent / target.replace(".", "/")
            modules = {f"{target}.{alias.name}" for alias in node.names
                       if (folder / alias.name).is_dir()
                       or (folder / f"{alias.name}.py").is_file()}
            # ``from agentsim import resources`` imports the module, not the package's __init__
            found |= modules if len(modules) == len(node.names) else modules | {target}
    return {name for name in found if name == "agentsim" or name.startswith("agentsim.")}


def package_graph() -> nx.DiGraph:
    """Package-level import graph of agentsim, with the importing modules on each edge."""
    graph = nx.DiGraph()
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        graph.add_node(source)
        for target in _imports(path):
            unit = _unit(target)
            if unit != source:
                graph.add_edge(source, unit)
                graph.edges[source, unit].setdefault("by", set()).add(
                    f"{_module_name(path)} -> {target}")
    return graph


def test_every_package_has_a_layer():
    graph = package_graph()
    assert len(graph) >= 15, sorted(graph)  # the walk really found the packages
    assert set(graph) - set(LAYER_OF) == set(), "place new packages in LAYERS"


def test_package_imports_are_acyclic():
    graph = package_graph()
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], cycles[:5]
    assert nx.is_directed_acyclic_graph(graph)


def test_imports_only_point_down_the_layers():
    graph = package_graph()
    upward = [
        (source, target, sorted(data["by"])[:3])
        for source, target, data in graph.edges(data=True)
        if LAYER_OF.get(target, -1) >= LAYER_OF.get(source, -1)
    ]
    assert upward == []


def test_the_checker_sees_deferred_and_relative_imports(tmp_path):
    """The walk counts an import inside a function and a relative import (else the checks above
    could pass by not looking)."""
    probe = PACKAGE / "judges" / "iat.py"
    assert any(name.startswith("agentsim.models") for name in _imports(probe))
    graph = package_graph()
    assert graph.has_edge("core", "models")  # store imports the redactor inside a function


def test_the_readme_layout_names_every_package_and_nothing_else():
    """The README's layout map matches the tree: each package of agentsim is listed, and each
    package or module the map names exists."""
    import re

    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    listed = set(re.findall(r"^  ([a-z_]+)/", block, re.M))
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert listed == packages
    modules = set(re.findall(r"^  ([a-z_]+\.py)", block, re.M))
    assert modules and all((PACKAGE / name).is_file() for name in modules)
    # Layers in the docs name the same packages as the test's table.
    architecture = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in LAYER_OF:
        if name not in {"__init__", "__main__"}:
            assert f"`{name}`" in architecture, name
