"""Where NSE Studio keeps its files, per user (platformdirs)."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import platformdirs

from nse_engine.atomic import is_temporary_name

APP_NAME = "nse-studio"


def data_dir() -> Path:
    """Converted models, projects' default location, the recent-models list, logs.

    `NSE_DATA_DIR` overrides it (tests, portable installs).
    """
    override = os.environ.get("NSE_DATA_DIR")
    path = Path(override) if override else platformdirs.user_data_path(APP_NAME, appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Key statistics and other recomputable caches. `NSE_CACHE_DIR` overrides it."""
    override = os.environ.get("NSE_CACHE_DIR")
    path = Path(override) if override else platformdirs.user_cache_path(APP_NAME, appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def packaged_file(distribution: str, relative: str) -> Path | None:
    """A data file shipped inside an installed package (read without importing the package),
    or None when the package is not installed."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(str(dist.locate_file(relative)))


PROJECT_LOG_FILE = "project.sqlite"  # the edit log in a project folder
PROJECT_STATE_DIR = "state"  # the editing-state files in a project folder
LOG_SIDE_FILES = ("-wal", "-shm", "-journal")  # what SQLite keeps beside a log while it is open


def is_log_leftover(name: str) -> bool:
    """A log that a project's creation was writing when it failed or was killed (`atomic_path`'s
    temporary name), or a file SQLite keeps beside it."""
    for ending in LOG_SIDE_FILES:
        name = name.removesuffix(ending)
    return is_temporary_name(name, of=PROJECT_LOG_FILE)


def holds_project(folder: Path) -> bool:
    """Whether `folder` already holds an NSE Studio project (its edit log), without opening it."""
    return (folder / PROJECT_LOG_FILE).is_file()


def resolved(path: Path) -> Path:
    """The absolute path with every symlink followed (also for a name that does not exist yet)."""
    return Path(os.path.realpath(path))
