"""Take a screenshot of every screen of NSE Studio after real edits on the default model.

Runs the real main window at 1366 × 768 under Xvfb (re-executing itself through xvfb-run when
there is no display), loads the model, opens a fresh project, types one fact in the Edit form and
queues two more (city → country facts with false targets, from the evaluation set), previews
the sample CSV, runs the three as one batch, asks the edited and the original model about an
edit that held in compare mode, and saves docs/screenshots/<screen>.png: each the whole window, its
status bar with the one progress area included. After each shot it warns about any visible widget
that lies outside the window (issue 37: nothing may be off a 1366 × 768 screen).

    python scripts/screenshots.py [--model default] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
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

WIDTH, HEIGHT = 1366, 768  # a common laptop screen: the window fills it
TYPED = {  # typed in the Edit form: a city → country fact of the evaluation set, with a false target
    "subject": "Chennai",
    "prompt": "{} is a city in the country of",
    "target_new": "Cambodia",
    "target_true": "India",
    "relation": "city_country",
    "paraphrases": "The city of Chennai is located in\nChennai is a city located in the country of",
    "questions": "Which country is Chennai in?",
    "neighborhood": "Nashik is a city in the country of => India\nAlwar is a city in the country of => India",
}
QUEUED = (  # (city, new country, true country, neighbours as (city, country)): queued with the typed one
    ("Jiaozhou", "Greece", "China", (("Tianshui", "China"), ("Haikou", "China"))),
    ("Graz", "Turkmenistan", "Austria", (("Linz", "Austria"), ("Vienna", "Austria"))),
)


def queued_requests() -> list:
    """The QUEUED facts as the engine's requests, each with the question Chat asks about it."""
    from nse_engine.facts import EditRequest, NeighborhoodCheck

    prompt = "{} is a city in the country of"
    return [
        EditRequest(
            city, prompt, new, true,
            paraphrases=(f"The city of {city} is located in", f"{city} is a city located in the country of"),
            neighborhood=tuple(NeighborhoodCheck(prompt.format(n), country) for n, country in neighbours),
            relation="city_country", questions=(f"Which country is {city} in?",),
        )
        for city, new, true, neighbours in QUEUED
    ]


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
    cmd = [xvfb_run, "-a", "-s", f"-screen 0 {WIDTH}x{HEIGHT}x24", sys.executable, *sys.argv]
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


def outside_widgets(window) -> list[str]:
    """Visible widgets that lie (partly) outside the window or the window outside its screen. A
    widget inside a scroll area's viewport is skipped: scrolling reaches it."""
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QAbstractScrollArea, QWidget

    found = []
    screen = window.screen().geometry()
    if not screen.contains(window.geometry()):  # no window manager under Xvfb: no frame around it
        found.append(f"the window {window.geometry().getRect()} on the screen {screen.getRect()}")
    bounds = window.rect()
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or widget.isWindow():
            continue
        parent, scrolled = widget.parentWidget(), False
        while parent is not None and parent is not window:
            area = parent.parentWidget()
            if isinstance(area, QAbstractScrollArea) and parent is area.viewport():
                scrolled = True
                break
            parent = area
        rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
        if not scrolled and not bounds.contains(rect):
            text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
            found.append(f"{type(widget).__name__} {widget.objectName()!r} {str(text)[:40]!r} at {rect.getRect()}")
    return found


async def take_screenshots(window, model: str, out: Path) -> None:
    from nse_app.resources import resource

    session = window.session
    out.mkdir(parents=True, exist_ok=True)

    def shot(view, name: str) -> None:
        window.tabs.setCurrentWidget(view)
        window.repaint()
        path = out / f"{name}.png"
        image = window.grab()
        image.save(str(path))
        log.info("saved %s (%d × %d)", path, image.width(), image.height())
        for problem in outside_widgets(window):
            log.warning("%s: outside the %d × %d window: %s", name, window.width(), window.height(), problem)

    await session.load_model(model)
    project = Path(tempfile.mkdtemp(prefix="nse-screenshots-")) / "cities-and-countries"
    await session.open_project(str(project))
    await settle(session)
    while session.preparing:  # the model's one-time preparation (quick once its statistics are cached)
        await asyncio.sleep(0.5)

    form = window.edit_form
    window.tabs.setCurrentWidget(form)
    for name in ("subject", "prompt", "target_new", "target_true", "relation"):
        getattr(form, name).setText(TYPED[name])
    for name in ("paraphrases", "questions", "neighborhood"):
        getattr(form, name).setPlainText(TYPED[name])
    form.refresh_preview()
    await settle(session)
    shot(form, "edit")
    form.submit()
    await settle(session)
    await session.queue_facts(queued_requests())
    await settle(session)

    window.import_view.preview(str(resource("sample_facts.csv")))
    await settle(session)
    shot(window.import_view, "import")

    queue = window.queue_view
    queue.advanced.setChecked(True)
    await settle(session)
    shot(queue, "queue")
    queue.advanced.setChecked(False)

    queue.batch_size.setValue(len(QUEUED) + 1)  # the three facts as one batch
    window.tabs.setCurrentWidget(queue)
    started = time.monotonic()
    queue.run_queue()
    while not session.busy and time.monotonic() - started < 10:
        await asyncio.sleep(0.05)
    label = window.progress.label  # the window's one progress area, in the status bar
    while session.busy and re.match(r"Starting|evaluation|target states 0/", label.text()):
        await asyncio.sleep(0.05)  # wait for the editing step under way, with its counts
    await asyncio.sleep(1.0)
    if session.busy:
        log.info("progress while running: %s", label.text())
        shot(queue, "queue-running")
    else:
        log.warning("the batch ended before its progress showed counts: no queue-running shot")
    await settle(session)
    log.info("edit batch took %.0f s", time.monotonic() - started)

    from nse_app import jobs

    rows = await session.job(jobs.log_rows)
    for row in rows:
        log.info("fact %s %s: %s, %s · wrote %r · chat %r", row.id, row.request.subject, row.status,
                 row.verdict or "not checked", row.continuation, row.chat_reply)
    held = [row.request.subject for row in rows if row.held]
    if not held:
        log.warning("no edit held in both the completion and the chat: the Chat shot shows one that did not")
    asked = held[0] if held else TYPED["subject"]  # Chat asks about an edit that held
    log_view = window.log_view
    window.tabs.setCurrentWidget(log_view)  # laid out, so that its table can scroll
    await settle(session)
    table = log_view.facts_table
    table.selectRow(next((i for i, f in enumerate(log_view._facts) if f.request.subject == asked), 0))
    table.horizontalScrollBar().setValue(table.horizontalScrollBar().maximum())  # the verdict columns
    await settle(session)
    shot(log_view, "log")
    shot(window.retention_view, "retention")

    chat = window.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.compare.setChecked(True)
    chat.max_tokens.setValue(48)
    await settle(session)
    index = next((i for i, f in enumerate(chat._facts) if f.subject == asked), 0)
    chat.fact_box.setCurrentIndex(index)
    chat.ask_button.click()
    await asyncio.sleep(0.5)
    while chat.streaming:
        await asyncio.sleep(0.1)
    await settle(session)
    log.info("chat: edited %r · original %r", chat.answers.get("edited"), chat.answers.get("original"))
    shot(chat, "chat")
    shot(window.model_view, "model")


async def run(args: argparse.Namespace) -> int:
    from PySide6.QtWidgets import QApplication

    from nse_app.main_window import MainWindow
    from nse_app.session import Session

    app = QApplication.instance()
    session = Session()
    window = MainWindow(session)
    window.setGeometry(0, 0, WIDTH, HEIGHT)  # no window manager under Xvfb: the window is the whole screen
    window.show()
    await asyncio.sleep(0.2)
    log.info("window %d × %d (minimum size hint %d × %d) on a %s screen", window.width(), window.height(),
             window.minimumSizeHint().width(), window.minimumSizeHint().height(), window.screen().geometry().size())
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
