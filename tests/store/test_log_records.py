"""What a batch's record carries is what the log reads back: its Retention point read for that batch
alone equals the whole series' point, and the Log's filter keeps the same rows of a record as the
SQL filter does. The parts of a project are its API: each refuses and reports on its own."""

import re

import pytest

from nse_engine.errors import ProjectError
from nse_engine.facts import EditRequest
from nse_engine.store import Project

from logged_projects import commit_said, logged_project


def test_a_batchs_retention_point_read_alone_is_its_point_in_the_whole_series(tmp_path):
    folder = logged_project(tmp_path / "p", [[True, False], [None, True], [True]])
    with Project.open(folder) as project:
        commit_said(project, [False, False], earlier_kept=False)
        project.history.undo_last_batch(lambda p: p.write_bytes(b"before"))  # batch 4 leaves the series
        commit_said(project, [True, None, False])
        series = project.queries.retention_points()
        in_effect = project.queries.batches(include_undone=False)
        assert [b.id for b in in_effect] == [1, 2, 3, 5]
        assert [project.queries.retention_point(b) for b in in_effect] == series
        assert series[-1].evaluated and series[-1].says_new == 0.5


def test_the_log_filter_keeps_the_same_rows_of_a_record_as_the_sql_filter(tmp_path):
    with Project.create(tmp_path / "p", "tiny", "fp") as project:
        project.queue.queue_facts([
            EditRequest("Straße", "Fact 10 of {} is", "new", "old", relation="P1"),
            EditRequest("École", "Fact 11 of {} is", "Neu", "alt"),
            EditRequest("france", "100% of {} is", "new", "old"),
        ])
        commit_said(project, [True, False])
        everything = project.queries.log_rows()
        assert {r.status for r in everything} == {"applied", "queued"}
        for status in (None, "applied", "queued", "undone"):
            for search in (None, "fact 1", "FRANCE", "p1", "ß", "É", "é", "%", "_", "new", "Fact 1_"):
                selected = project.queries.log_rows(status, search)
                assert [r for r in everything if r.matches(status, search)] == selected, (status, search)


def test_each_part_of_a_read_only_project_refuses_changes_saying_why(tmp_path):
    folder = logged_project(tmp_path / "p", [[True]])
    with Project.open(folder, read_only=True) as project:
        queue, history, meta = project.queue, project.history, project.meta
        with pytest.raises(ProjectError, match="cannot queue facts: it was opened for reading only"):
            queue.queue_facts([EditRequest("Chile", "The capital of {} is", "Lima", "Santiago")])
        with pytest.raises(ProjectError, match="cannot undo the batch: it was opened for reading only"):
            history.undo_last_batch(None)
        assert project.chats.record("Hi", "Hello") is None
        assert meta.method == "memit" and meta.base_model_source == "tiny"
        assert len(project.queries.facts()) == 1


def test_a_projects_method_is_fixed_with_one_message(tmp_path):
    folder = logged_project(tmp_path / "p", [[True]], method="alphaedit")
    with Project.open(folder) as project:
        project.meta.check_compatible("alphaedit")
        project.meta.check_compatible(None)
        message = f"{folder} edits with AlphaEdit; the method cannot change within a project: create a new project to edit with NSE"
        with pytest.raises(ProjectError, match=re.escape(message)):
            project.meta.choose_method("nse")
        with pytest.raises(ProjectError, match="unknown editing method 'rome'"):
            project.meta.check_compatible("rome")
        assert project.meta.method == "alphaedit"
