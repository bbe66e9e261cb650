"""Another project's Retention curves, read to overlay them on the open project's charts.

The other project is opened read-only: no write lock, so it can be overlaid while another window
or `nse edit` is writing it.
"""

from __future__ import annotations

from pathlib import Path

from nse_engine.method_names import SWITCH_NAMES
from nse_engine.store.log_rows import ProjectSeries
from nse_engine.store.project import Project


def read_series(folder: Path) -> ProjectSeries:
    """The project in `folder`: its name, method, NAS / ENCORE switches and Retention points."""
    folder = Path(folder)
    with Project.open(folder, read_only=True) as project:
        batches = project.queries.batches(include_undone=False)
        settings = batches[-1].hparams if batches else project.meta.chosen_settings
        return ProjectSeries(
            folder=str(folder), name=folder.name, method=project.meta.method,
            switches={key: bool(settings.get(key)) for key in SWITCH_NAMES},
            points=tuple(project.queries.retention_points()),
        )
