"""Running the same import or `nse edit` again, or after a crash, edits no fact twice."""

from __future__ import annotations

from datetime import datetime, timezone

from nse_engine.facts import FactOutcome
from nse_engine.store import ImportOptions, Project

from reliability.faults import FACTS, cli, edit_requests, write_facts_csv


def _applied_project(folder) -> Project:
    project = Project.create(folder)
    project.queue.queue_facts(edit_requests(FACTS[:1]))
    now = datetime.now(timezone.utc)
    project.history.commit_batch([FactOutcome(r, applied=True) for r in project.queue.queued_facts()], "NSE", {}, now, now,
                                 lambda path: path.write_bytes(b"state"))
    return project


def test_a_fact_identical_to_an_applied_one_is_skipped_not_queued(tmp_path):
    path = write_facts_csv(tmp_path / "facts.csv", FACTS[:2])
    with _applied_project(tmp_path / "project") as project:
        report = project.queue.import_facts(path)
        assert report.imported == 1 and report.rejected == []
        (skipped,) = report.skipped
        assert skipped.line == 2 and str(skipped) == "line 2: already applied in batch 1 (fact 1)"
        assert [r.subject for r in project.queue.queued_facts()] == ["Germany"]

        again = project.queue.import_facts(path, ImportOptions(reapply=True))
        assert again.imported == 1 and [s.line for s in again.skipped] == [3]  # Germany: already queued
        assert [r.subject for r in project.queue.queued_facts()] == ["Germany", "France"]


def test_the_cli_reports_skipped_rows_and_can_reapply(tmp_path, capsys):
    path = write_facts_csv(tmp_path / "facts.csv", FACTS[:1])
    _applied_project(tmp_path / "project").close()
    rc, out, err = cli(capsys, "import", path, "--project", tmp_path / "project")
    assert rc == 0, err
    assert "skipped" in out and "already applied in batch 1" in out and "rejected      0" in out
    rc, out, err = cli(capsys, "import", path, "--project", tmp_path / "project", "--reapply")
    assert rc == 0 and "imported      1" in out


def test_running_nse_edit_again_edits_nothing_twice(tmp_path, capsys, tiny_model_dir):
    cases = write_facts_csv(tmp_path / "facts.csv", FACTS[:4])
    project = tmp_path / "project"
    args = ("edit", "--model", tiny_model_dir, "--cases", cases, "--project", project, "--batch-size", "2")

    rc, out, err = cli(capsys, *args, "--limit", "2")  # as if the run had stopped after one batch
    assert rc == 0, err
    assert "batch 1:" in out and "batch 2:" not in out

    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    assert "rejected" not in out
    assert f"2 facts of {cases} are already applied" in out and f"2 facts of {cases} are already queued" in out
    assert "batch 2:" in out and "batch 3:" not in out

    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    assert not any(line.startswith("batch ") for line in out.splitlines()) and "nothing to edit" in out
    with Project.open(project) as log:
        facts = log.queries.facts()
        assert len(facts) == 4 and {f.status for f in facts} <= {"applied", "failed"}
        assert sorted(f.id for b in log.queries.batches() for f in map(log.queries.fact, b.fact_ids)) == [1, 2, 3, 4]
