"""The layers stay apart: the engine never reaches Qt or the app, not even through other modules;
the lowest engine layers import nothing above them; the app imports only the engine's torch-free
records (and the jobs module, lazily, the rest); importing the app's windows imports no torch; the
engine's imports form no cycle, imports for type checkers included."""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QT = {"PySide6", "qasync", "pyqtgraph"}

# What nse_app may import from the engine at module level: records, errors and progress, the
# fact rules the Edit form checks as you type, the built-in models' and editing methods' names, and
# where data lives.
# Each of these imports nothing heavier than SQLite; test_importing_the_app_imports_no_torch holds them to it.
APP_MAY_IMPORT = {
    "nse_engine",  # its __version__, for Help ▸ About (the package itself imports nothing)
    "nse_engine.answers",  # the whole-word rule, so the app highlights what the verdicts count
    "nse_engine.bench_curves",  # the Retention screen reads a benchmark run's curves (JSON only)
    "nse_engine.errors",
    "nse_engine.fact_files.validation",
    "nse_engine.editing.hparams",  # which settings a batch may change (field metadata), for the Advanced panel
    "nse_engine.facts",
    "nse_engine.method_names",
    "nse_engine.progress",
    "nse_engine.paths",
    "nse_engine.project_summary",  # the open project's method, layers and settings, for the views
    "nse_engine.model.builtin_models",
    "nse_engine.model.summary",
    "nse_engine.store.log_rows",
    "nse_engine.store.output_paths",  # the save dialogs refuse a project's own files before writing
    "nse_engine.store.records",
}
# The one app module that imports the rest of the engine, inside its functions (see its docstring).
APP_LAZY_IMPORTS = "nse_app/jobs.py"


def _module_name(file: Path) -> str:
    parts = list(file.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(f): f for f in (ROOT / package).rglob("*.py")}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(file: Path, type_checking: bool = False) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import `file` runs; names imported from a
    package that are its submodules count as those submodules. Imports only for type checkers
    (`if TYPE_CHECKING:`) never run: they count only with `type_checking`, as they still tie the
    two modules together (a circle a type checker sees is a circle a reader has to follow)."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        if _is_type_checking(node) and not type_checking:
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, top) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [f"{node.module}.{alias.name}" for alias in node.names]
            submodules = [c for c in candidates if (ROOT / (c.replace(".", "/") + ".py")).exists()
                          or (ROOT / c.replace(".", "/") / "__init__.py").exists()]
            found.extend((m, top) for m in submodules or [node.module])
        inner = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(file.read_text(encoding="utf-8")), True)
    return found


def _reached(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def _engine_graph() -> dict[str, set[str]]:
    """Engine module -> the modules it imports, lazily or for type checkers included."""
    return {name: {m for m, _top in _imports(file, type_checking=True)} for name, file in _modules("nse_engine").items()}


def test_engine_never_reaches_qt_or_the_app_through_its_own_modules():
    graph = _engine_graph()
    offenders = {}
    for module in graph:
        reached = {m.split(".")[0] for m in _reached(module, graph)}
        bad = reached & (QT | {"nse_app"})
        if bad:
            offenders[module] = bad
    assert not offenders


def test_importing_the_whole_engine_loads_no_qt():
    """Third-party libraries included: every engine module imported, then no Qt binding is loaded."""
    modules = sorted(m for m in _modules("nse_engine") if not m.endswith("__main__"))
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + (
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(QT | {'nse_app'})!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_engine_imports_form_no_cycle():
    """Lazy imports and imports under `if TYPE_CHECKING:` included: a cycle hidden inside a
    function or behind the type checker's flag is still a cycle."""
    graph = _engine_graph()
    cycles = sorted(m for m in graph if any(m in _reached(n, graph) for n in graph[m]))
    assert not cycles


# The engine's bottom: records, errors, progress and paths, which every layer may import.
BOTTOM = {"nse_engine", "nse_engine.answers", "nse_engine.atomic", "nse_engine.errors", "nse_engine.facts",
          "nse_engine.json_lines", "nse_engine.method_names", "nse_engine.paths", "nse_engine.progress",
          "nse_engine.provenance"}
# The lowest layers (model → stats → editing → evaluation/store → workspace → cli/app) and which of
# the others each may import besides the bottom: reading fact files lies below the store and bench.
MAY_IMPORT = {
    "nse_engine.model": set(),
    "nse_engine.fact_files": set(),
    "nse_engine.stats": {"nse_engine.model"},
    "nse_engine.store": {"nse_engine.fact_files"},
}


def _layer(module: str) -> str:
    """The engine package a module belongs to (nse_engine.model for nse_engine.model.loading), or
    the module itself at the top of the engine."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else module


def test_lower_layers_import_nothing_above_them():
    graph = _engine_graph()
    rules = {layer: BOTTOM | {layer} | below for layer, below in MAY_IMPORT.items()} | dict.fromkeys(BOTTOM, BOTTOM)
    above = {module: {m for m in imported if m.startswith("nse_engine") and _layer(m) not in rules[_layer(module)]}
             for module, imported in graph.items() if _layer(module) in rules}
    assert not {m: bad for m, bad in above.items() if bad}


def _app_engine_imports() -> dict[Path, list[tuple[str, bool]]]:
    return {file: [(m, top) for m, top in _imports(file) if m.split(".")[0] == "nse_engine"]
            for file in _modules("nse_app").values()}


def test_app_imports_only_the_engines_records_at_module_level():
    outside = {str(file.relative_to(ROOT)): {m for m, top in engine if top} - APP_MAY_IMPORT
               for file, engine in _app_engine_imports().items()}
    assert not {f: m for f, m in outside.items() if m}


def test_app_imports_the_rest_of_the_engine_only_lazily_in_the_jobs_module():
    lazy = {str(file.relative_to(ROOT)): {m for m, top in engine if not top}
            for file, engine in _app_engine_imports().items() if file != ROOT / APP_LAZY_IMPORTS}
    assert not {f: m for f, m in lazy.items() if m}


def test_importing_the_app_imports_no_torch():
    code = ("import sys, nse_app.main, nse_app.jobs\n"
            "print(sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_app_does_no_tensor_math():
    offenders = {
        name: {m for m, _top in _imports(file) if m.split(".")[0] in {"torch", "numpy", "transformers"}}
        for name, file in _modules("nse_app").items()
    }
    assert not {f: n for f, n in offenders.items() if n}
