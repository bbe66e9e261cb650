"""The Retention screen's overlay of another project's curves (read through the worker from a real
log, read-only while that project's writer holds its lock) and its "held" line."""

from __future__ import annotations

import pytest

from nse_engine.store import Project
from nse_engine.store.log_rows import RetentionRow
from nse_engine.project_summary import ProjectSummary

from nse_app.recent_projects import remember_project
from nse_app.session import Session
from nse_app.views.retention_view import NO_OVERLAY, RetentionView

from app.conftest import error_dialogs, wait_idle
from logged_projects import logged_project


@pytest.fixture
def session(qtbot, loop):
    s = Session()
    yield s
    s.shutdown()


def _drawn(view: RetentionView, lines, key: str) -> tuple[list[float], list[float]]:
    xs, ys = lines.curves[key][0].getData()
    return [float(x) for x in xs], [float(y) for y in ys]


def _legend(view: RetentionView) -> list[str]:
    return [label.text for _sample, label in view.retention.plot.legend.items]


def test_another_projects_curves_are_overlaid_named_after_it_and_cleared(qtbot, session, tmp_path):
    other = logged_project(tmp_path / "memit-run", [[True, True], [False, True]])
    remember_project(str(other))
    view = RetentionView(session)
    qtbot.addWidget(view)
    own = RetentionRow(1, 1, 0, 0, None, 1.0, None, None, None, says_new=1.0)
    view.show_series([own])
    assert [view.overlay_picker.itemText(i) for i in range(view.overlay_picker.count())] == [NO_OVERLAY, str(other)]
    assert not view.overlay_picker.isHidden()

    with Project.open(other):  # its writer holds the lock, as another window would
        view.overlay_picker.setCurrentIndex(1)
        view.overlay_picker.activated.emit(1)
        qtbot.waitUntil(lambda: view.overlay is not None, timeout=30_000)
        wait_idle(qtbot, session)
    assert not error_dialogs()
    assert _drawn(view, view.overlay_lines, "says_new") == ([2.0, 4.0], [1.0, 0.5])
    assert _drawn(view, view.overlay_lines, "share") == ([4.0], [1.0])
    assert _drawn(view, view.overlay_lines, "first_batch_share") == ([4.0], [1.0])
    assert view.overlay_count == 4
    assert _drawn(view, view.retention.lines, "says_new") == ([1.0], [1.0])  # its own line stays
    assert "memit-run (MEMIT + NAS): earlier edits retained" in _legend(view)
    assert view.overlay_label.text() == "Overlay: memit-run (MEMIT + NAS), 2 batches"

    view.clear_overlay_button.click()
    assert view.overlay is None and view.overlay_count == 0
    assert not any("memit-run" in text for text in _legend(view))
    assert not view.clear_overlay_button.isEnabled()


def test_the_says_new_line_has_a_point_for_each_batch_that_checked_its_facts(qtbot, session):
    view = RetentionView(session)
    qtbot.addWidget(view)
    view.show_series([RetentionRow(1, 2, 0, 0, None, 1.0, None, None, None, says_new=0.5),
                      RetentionRow(2, 4, 2, 2, 1.0, 1.0, None, None, None)])
    assert _drawn(view, view.retention.lines, "says_new") == ([2.0], [0.5])
    assert "held: says it in completion and chat (the batch's facts)" in _legend(view)


def _open(session: Session, folder) -> None:
    """As opening a project does, as far as the Retention screen sees it."""
    session.project_info = ProjectSummary(str(folder), folder.name, "default", "nse")
    session.project_changed.emit(session.project_info)


def test_the_picker_follows_the_overlay_and_the_open_project_is_never_overlaid(qtbot, session, tmp_path):
    other = logged_project(tmp_path / "memit-run", [[True, True]])
    remember_project(str(other))
    view = RetentionView(session)
    qtbot.addWidget(view)
    view.overlay_picker.activated.emit(1)
    qtbot.waitUntil(lambda: view.overlay is not None, timeout=30_000)
    _open(session, tmp_path / "own")  # another project opened: the overlay and its name in the picker stay
    wait_idle(qtbot, session)
    assert view.overlay is not None and view.overlay_picker.currentText() == str(other)

    view.overlay_from(str(other))  # cleared before the read comes back: not drawn again
    view.clear_overlay_button.click()
    wait_idle(qtbot, session)
    assert view.overlay is None and view.overlay_picker.currentIndex() == 0

    view.overlay_from(str(other))
    qtbot.waitUntil(lambda: view.overlay is not None, timeout=30_000)
    view.overlay_picker.activated.emit(0)  # the placeholder clears it
    assert view.overlay is None and not view.clear_overlay_button.isEnabled()

    view.overlay_from(str(other))
    qtbot.waitUntil(lambda: view.overlay is not None, timeout=30_000)
    _open(session, other)  # the overlaid project opened: not overlaid on itself
    wait_idle(qtbot, session)
    assert view.overlay is None and view.overlay_picker.count() == 1
    assert view.overlay_picker.isHidden()  # a picker with nothing to pick is not shown
    assert not error_dialogs()
