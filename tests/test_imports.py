"""The package's import graph: every module of ``src/trdnet``, read from its source, and no cycle in it."""

import ast
from pathlib import Path

import trdnet


def _module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file below the package folder."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported_names(name: str, path: Path, modules) -> set[str]:
    """Modules of the package that ``name`` imports anywhere in its file (also inside functions)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {t for t in found if t in modules and t != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for every module below ``root`` (a package folder)."""
    modules = _module_files(root)
    return {name: _imported_names(name, path, modules) for name, path in modules.items()}


def modules_in_cycles(graph) -> set[str]:
    """Modules that can reach themselves through the import graph (members of some import cycle)."""
    reach = {}
    for start in graph:
        seen, todo = set(), [start]
        while todo:
            for target in graph[todo.pop()]:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        reach[start] = seen
    return {module for module in graph if module in reach[module]}


def _cycle_edges(graph, cyclic) -> list[str]:
    return sorted(f"{a} -> {b}" for a in cyclic for b in graph[a] if b in cyclic)


def test_graph_holds_every_module_and_its_imports():
    root = Path(trdnet.__file__).parent
    graph = import_graph(root)
    assert set(graph) == set(_module_files(root)) and len(graph) == len(list(root.rglob("*.py")))
    assert "trdnet.targeting.select" in graph["trdnet.targeting.api"]  # from .select import ...
    assert "trdnet.networks.rois" in graph["trdnet.networks.atlas_check"]
    assert "trdnet.console" in graph["trdnet.demo"] and "trdnet.cli" not in graph["trdnet.demo"]


def test_no_import_cycle_in_the_package():
    # every import counts, also those inside functions: a cycle there is still two modules needing each other
    graph = import_graph(Path(trdnet.__file__).parent)
    cyclic = modules_in_cycles(graph)
    assert not cyclic, "import cycles: " + "; ".join(_cycle_edges(graph, cyclic))


def test_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("from .b import f\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import g\n    return g\n")
    (package / "c.py").write_text("import pkg.a\n")
    graph = import_graph(package)
    assert modules_in_cycles(graph) == {"pkg.a", "pkg.sub.b"}
