"""What the Retention screen reads from a log: per batch the share of its facts that the model
says, and another project's curves, read without its write lock."""

from nse_engine.store import Project
from nse_engine.store.overlay import read_series

from logged_projects import commit_said, logged_project


def test_each_batch_has_the_share_of_its_checked_facts_that_say_the_new_object(tmp_path):
    folder = logged_project(tmp_path / "p", [[True, False, None, True], [None, None]])
    with Project.open(folder, read_only=True) as project:
        shares = project.queries.written_shares()
        points = project.queries.retention_points()
    assert list(shares) == [1]  # the second batch checked nothing
    assert (shares[1].checked, shares[1].said) == (3, 2)
    assert [p.says_new for p in points] == [2 / 3, None]


def test_another_project_is_read_while_its_writer_holds_the_lock(tmp_path):
    folder = logged_project(tmp_path / "memit-run", [[True, True], [False, True]])
    with Project.open(folder) as writer:  # the write lock is held, as by another window
        series = read_series(folder)
        commit_said(writer, [False])
        grown = read_series(folder)
    assert (series.name, series.method, series.switches) == ("memit-run", "memit", {"norm_anchoring": True, "encore": False})
    assert [(p.batch_id, p.edits_applied, p.says_new) for p in series.points] == [(1, 2, 1.0), (2, 4, 0.5)]
    assert [p.share for p in series.points] == [None, 1.0]
    assert len(grown.points) == 3


def test_a_new_projects_chosen_settings_are_kept_until_its_first_state(tmp_path):
    with Project.create(tmp_path / "p") as project:
        project.meta.choose_method("alphaedit")
        project.meta.record_chosen_settings({"encore": True, "norm_anchoring": False})
    series = read_series(tmp_path / "p")
    assert (series.method, series.switches, series.points) == ("alphaedit", {"norm_anchoring": False, "encore": True}, ())
