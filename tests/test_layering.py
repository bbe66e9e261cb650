"""The layers stay apart: the engine never imports Qt, the app never does tensor math."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for file in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(file.relative_to(ROOT))] = names
    return found


def test_engine_never_imports_qt():
    offenders = {
        file: names & {"PySide6", "qasync", "pyqtgraph", "nse_app"}
        for file, names in _imported_modules("nse_engine").items()
    }
    assert not {f: n for f, n in offenders.items() if n}


def test_app_does_no_tensor_math():
    offenders = {
        file: names & {"torch", "numpy", "transformers"}
        for file, names in _imported_modules("nse_app").items()
    }
    assert not {f: n for f, n in offenders.items() if n}
