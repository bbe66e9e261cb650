"""Entry point of the `nse-app` command."""

from __future__ import annotations

import argparse
import os
import sys

# Settle the Qt binding before qasync / pyqtgraph are imported.
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6.QtWidgets import QApplication, QLabel, QMainWindow  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nse-app", description="NSE Studio desktop app")
    parser.add_argument("--model", help="model folder, .gguf file, or 'default' to load at start")
    args, qt_args = parser.parse_known_args(argv)
    app = QApplication([sys.argv[0], *qt_args])
    window = QMainWindow()
    window.setWindowTitle("NSE Studio")
    window.setCentralWidget(QLabel(f"NSE Studio — model: {args.model or 'none'}"))
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
