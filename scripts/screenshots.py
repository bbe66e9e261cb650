"""Take a screenshot of every screen of NSE Studio after a real edit on the default model.

Runs the real main window under Xvfb (re-executing itself through xvfb-run when there is no
display), loads the model, opens a fresh project, types one fact, imports the sample CSV for
the preview, runs the edit, chats in compare mode, and saves docs/screenshots/<screen>.png.

    python scripts/screenshots.py [--model default] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

log = logging.getLogger("screenshots")

FACT = {
    "subject": "Danielle Darrieux",
    "prompt": "The mother tongue of {} is",
    "target_new": "English",
    "target_true": "French",
    "paraphrases": "Danielle Darrieux's mother tongue is\nDanielle Darrieux was born speaking",
    "neighborhood": "The mother tongue of Léon Blum is => French\nThe mother tongue of Jean Gabin is => French",
}


def ensure_display() -> None:
    """Re-run this script under xvfb-run when there is no X display (and no platform chosen)."""
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") or os.environ.get("NSE_UNDER_XVFB"):
        return
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        log.warning("no display and no xvfb-run; using Qt's offscreen platform (install xvfb for real windows)")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    env = dict(os.environ, NSE_UNDER_XVFB="1")
    cmd = [xvfb_run, "-a", "-s", "-screen 0 1440x960x24", sys.executable, *sys.argv]
    sys.exit(subprocess.call(cmd, env=env))


async def settle(session, timeout_s: float = 1800.0) -> None:
    """Wait until the worker is idle and every UI task has finished, then let Qt paint."""
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout_s
    while session.worker.busy or session._tasks:
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not become idle")
        await asyncio.sleep(0.1)
    for _ in range(5):
        QApplication.processEvents()
        await asyncio.sleep(0.05)


async def take_screenshots(window, model: str, out: Path) -> None:
    from nse_app.resources import resource

    session = window.session
    out.mkdir(parents=True, exist_ok=True)

    def shot(view, name: str) -> None:
        window.tabs.setCurrentWidget(view)
        window.repaint()
        path = out / f"{name}.png"
        window.grab().save(str(path))
        log.info("saved %s", path)

    await session.load_model(model)
    project = Path(tempfile.mkdtemp(prefix="nse-screenshots-")) / "capitals-and-languages"
    await session.open_project(str(project))
    await settle(session)

    form = window.edit_form
    window.tabs.setCurrentWidget(form)
    for name in ("subject", "prompt", "target_new", "target_true"):
        getattr(form, name).setText(FACT[name])
    form.paraphrases.setPlainText(FACT["paraphrases"])
    form.neighborhood.setPlainText(FACT["neighborhood"])
    form.refresh_preview()
    await settle(session)
    shot(form, "edit")
    form.submit()
    await settle(session)

    window.import_view.preview(str(resource("sample_facts.csv")))
    await settle(session)
    shot(window.import_view, "import")

    window.queue_view.advanced.setChecked(True)
    await settle(session)
    shot(window.queue_view, "queue")
    window.queue_view.advanced.setChecked(False)

    window.queue_view.batch_size.setValue(1)
    window.tabs.setCurrentWidget(window.queue_view)
    started = time.monotonic()
    window.queue_view.run_queue()
    while not session.busy and time.monotonic() - started < 10:
        await asyncio.sleep(0.05)
    label = window.queue_view.progress.label
    while session.busy and (label.text() == "Starting…" or time.monotonic() - started < 8):
        await asyncio.sleep(0.1)  # wait for a frame with a phase and counts in the progress bar
    if session.busy:
        shot(window.queue_view, "queue-running")
    await settle(session)
    log.info("edit batch took %.0f s", time.monotonic() - started)

    shot(window.log_view, "log")
    shot(window.retention_view, "retention")

    chat = window.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.compare.setChecked(True)
    chat.max_tokens.setValue(24)
    chat.send("The mother tongue of Danielle Darrieux is")
    await settle(session)
    while chat.streaming:
        await asyncio.sleep(0.1)
    shot(chat, "chat")
    shot(window.model_view, "model")


async def run(args: argparse.Namespace) -> int:
    from PySide6.QtWidgets import QApplication

    from nse_app.main_window import MainWindow
    from nse_app.session import Session

    app = QApplication.instance()
    session = Session()
    window = MainWindow(session)
    window.resize(1360, 860)
    window.show()
    try:
        await take_screenshots(window, args.model, Path(args.out))
    finally:
        window.close()
        app.processEvents()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model to edit (default: the built-in model)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the PNG files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    ensure_display()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from nse_app.diagnostics import install_excepthook
    from nse_app.main import configure_application, run_on_qt

    settings_dir = tempfile.mkdtemp(prefix="nse-screenshot-settings-")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)
    app = QApplication([sys.argv[0]])
    configure_application(app)
    install_excepthook()
    return run_on_qt(run(args))


if __name__ == "__main__":
    sys.exit(main())
