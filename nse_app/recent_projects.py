"""The recent projects list, kept in QSettings: what the Model screen lists and the Retention
screen offers to overlay. UI state only (projects themselves live in their folders)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

RECENT_PROJECTS_KEY = "projects/recent"
_MAX_RECENT_PROJECTS = 10


def settings_list(settings: QSettings, key: str) -> list[str]:
    """A list of strings kept in QSettings. An INI file gives a one-element list back as a plain
    string (and an empty one as None or ""); iterating that string listed "/", "t", "m", …"""
    value = settings.value(key)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _project_folders(entries: list[str]) -> list[str]:
    """Absolute folders, each once, in order: drops the single characters that a recent list
    split by the old reading left behind (a project is never the filesystem root)."""
    folders: list[str] = []
    for entry in entries:
        if os.path.isabs(entry) and os.path.dirname(entry) != entry and entry not in folders:
            folders.append(entry)
    return folders


def remember_project(folder: str) -> None:
    """Put `folder` first in the recent projects (the Model screen's list, the Retention overlays)."""
    folder = os.path.abspath(folder)
    settings = QSettings()
    recent = [p for p in recent_projects(settings) if p != folder]
    settings.setValue(RECENT_PROJECTS_KEY, [folder, *recent][:_MAX_RECENT_PROJECTS])


def recent_projects(settings: QSettings | None = None) -> list[str]:
    """The recently opened project folders, newest first."""
    return _project_folders(settings_list(settings or QSettings(), RECENT_PROJECTS_KEY))
