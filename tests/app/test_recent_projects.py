"""Recent projects survive launches: the app is started twice, each time as its own process with
--model and --project, against one real QSettings INI file in a temporary folder. An INI file gives
a one-element list back as a plain string, which the second launch used to split into characters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QSettings

from nse_app.recent_projects import RECENT_PROJECTS_KEY, recent_projects

# One launch of the app as `nse-app --model M --project P` would make it (the real window, Session
# and start-up), with QSettings in the given folder; prints the Model screen's recent projects at
# start and once the project is open.
LAUNCH = """
import asyncio, json, sys
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from nse_app.main import configure_application, run_on_qt, startup
from nse_app.main_window import MainWindow
from nse_app.session import Session

settings_dir, model, project = sys.argv[1:4]
app = QApplication([])
configure_application(app)
QSettings.setDefaultFormat(QSettings.Format.IniFormat)
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)

def shown(window):
    items = window.model_view.recent_projects
    return [items.item(row).text() for row in range(items.count())]

async def launch():
    window = MainWindow(Session())
    window.show()
    at_start = shown(window)
    await startup(window, model, project)
    after_open = shown(window)
    window.close()
    await asyncio.sleep(0)
    return {"at_start": at_start, "after_open": after_open}

print("RESULT " + json.dumps(run_on_qt(launch())), flush=True)
"""


def _launch(settings_dir: Path, model: Path, project: Path) -> dict[str, list[str]]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_API="pyside6", PYQTGRAPH_QT_LIB="PySide6")
    done = subprocess.run([sys.executable, "-c", LAUNCH, str(settings_dir), str(model), str(project)],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_recent_projects_after_the_second_launch(tiny_model_dir, tmp_path):
    settings_dir = tmp_path / "launch-settings"
    first, second = tmp_path / "first", tmp_path / "second"

    one = _launch(settings_dir, tiny_model_dir, first)
    assert one == {"at_start": [], "after_open": [str(first)]}
    two = _launch(settings_dir, tiny_model_dir, second)
    assert two == {"at_start": [str(first)], "after_open": [str(second), str(first)]}

    (ini,) = settings_dir.rglob("*.ini")  # the file the next launch reads, read afresh
    settings = QSettings(str(ini), QSettings.Format.IniFormat)
    assert recent_projects(settings) == [str(second), str(first)]
    assert settings.value(RECENT_PROJECTS_KEY) == [str(second), str(first)]


def test_a_list_split_into_characters_by_an_old_launch_is_repaired(tmp_path):
    ini = tmp_path / "old.ini"
    ini.write_text(f"[projects]\nrecent={tmp_path / 'p2'}, /, t, m, p, /, p, 1\n", encoding="utf-8")
    assert recent_projects(QSettings(str(ini), QSettings.Format.IniFormat)) == [str(tmp_path / "p2")]
