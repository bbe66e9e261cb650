"""Entry point of the `nse-app` command: NSE Studio's main window on a qasync event loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
from typing import Any, Coroutine

# Settle the Qt binding before qasync / pyqtgraph are imported.
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
# Leave a core to the GUI thread: torch's intra-op pool would otherwise take every core and
# starve the event loop during a batch (torch reads this when the worker first imports it).
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))

from PySide6.QtCore import QCoreApplication  # noqa: E402
from PySide6.QtGui import QIcon  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from qasync import QEventLoop  # noqa: E402

from nse_engine.facts import EditRequest  # noqa: E402

from nse_app.diagnostics import install_excepthook, setup_logging  # noqa: E402
from nse_app.jobs import preload_engine  # noqa: E402
from nse_app.main_window import MainWindow  # noqa: E402
from nse_app.resources import resource, style_sheet  # noqa: E402
from nse_app.session import Session  # noqa: E402

log = logging.getLogger("nse_app")

ORGANIZATION = "NSE Studio"
APPLICATION = "nse-studio"


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="nse-app", description="NSE Studio desktop app")
    parser.add_argument("--model", help="model folder, .gguf file, or 'default' to load at start")
    parser.add_argument("--project", help="project folder to open (created if empty) once the model is loaded")
    parser.add_argument("-v", "--verbose", action="store_true", help="also log to stderr")
    parser.add_argument("--smoke-test", action="store_true",
                        help="check a build: load the model (default: the built-in one), apply one edit in a "
                             "temporary project, print the outcome and quit (exit status 0 when it applied)")
    return parser.parse_known_args(argv)


def configure_application(app: QApplication) -> None:
    """Names (for QSettings), icon and style sheet shared by the app, tests and screenshots."""
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("NSE Studio")
    icon = resource("icon.png")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    app.setStyleSheet(style_sheet())


async def startup(window, model: str | None, project: str | None) -> None:
    """The command line's requests, in order: load the model, then open the project."""
    session = window.session
    if model:
        await session.load_model(model)
    if project:
        if session.model_info is None:
            log.warning("--project needs --model; not opening %s", project)
            return
        await session.open_project(project)


SMOKE_FACT = EditRequest("Danielle Darrieux", "The mother tongue of {} is", "English", "French")


async def smoke_test(window, model: str | None) -> int:
    """Load `model`, edit one fact in a throw-away project, close the window; 0 if it applied."""
    session = window.session
    folder = tempfile.mkdtemp(prefix="nse-smoke-")
    try:
        info = await session.load_model(model or "default")
        await session.open_project(os.path.join(folder, "project"))
        ids = await session.queue_facts([SMOKE_FACT])
        (changes,) = await session.run_queue(ids, len(ids), {"stats_tokens": 8192})  # one batch, a quick statistics sample
        applied = len(changes.applied_fact_ids)
        print(f"smoke test: {info.name} ({info.architecture}) loaded; {applied} of 1 edit applied", flush=True)
        return 0 if applied == 1 else 1
    except Exception as exc:  # reported, not raised: the exit status is the verdict
        print(f"smoke test failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        window.close()
        shutil.rmtree(folder, ignore_errors=True)


async def run_app(args: argparse.Namespace) -> int:
    preload_engine()
    app = QApplication.instance()
    closed = asyncio.get_running_loop().create_future()
    app.aboutToQuit.connect(lambda: closed.done() or closed.set_result(0))
    session = Session()
    window = MainWindow(session)
    window.show()
    if args.smoke_test:
        return await smoke_test(window, args.model)
    session.start(startup(window, args.model, args.project))
    await closed
    return 0


def run_on_qt(coro: Coroutine[Any, Any, int]) -> int:
    """Run `coro` with asyncio on Qt's event loop (qasync), until it returns."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=QEventLoop) as runner:
            return runner.run(coro)
    loop = QEventLoop(QApplication.instance())
    asyncio.set_event_loop(loop)
    with loop:
        return loop.run_until_complete(coro)


def main(argv: list[str] | None = None) -> int:
    args, qt_args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl+C in the terminal quits (Qt's loop hides it from Python)
    path = setup_logging(args.verbose)
    app = QApplication([sys.argv[0], *qt_args])
    configure_application(app)
    install_excepthook()
    log.info("NSE Studio starting; log file %s", path)
    return run_on_qt(run_app(args))


if __name__ == "__main__":
    sys.exit(main())
