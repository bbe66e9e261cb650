"""Our own files come back as they went out; a file that is not a project log stays untouched."""

from __future__ import annotations

import csv

from nse_engine.store import Project
from nse_engine.store.csv_export import export_rejected

from reliability.faults import FACTS, cli, error_line, write_facts_csv

FORMULA_LIKE = [
    ("France", "The capital of {} is", "=Rome", "Paris"),
    ("Germany", "The capital of {} is", "-5 degrees", "+49"),
    ("Italy", "The capital of {} is", "@home", "'quoted"),
]


def test_reimporting_our_log_export_keeps_formula_like_values(tmp_path, capsys):
    with Project.create(tmp_path / "one") as project:
        project.queue.import_facts(write_facts_csv(tmp_path / "facts.csv", FORMULA_LIKE))
    export = tmp_path / "log.csv"
    assert cli(capsys, "log", "--project", tmp_path / "one", "--csv", export)[0] == 0
    with open(export, encoding="utf-8-sig", newline="") as fh:
        assert [row["target_new"] for row in csv.DictReader(fh)] == ["'=Rome", "'-5 degrees", "'@home"]

    with Project.create(tmp_path / "two") as project:
        report = project.queue.import_facts(export)
        assert report.rejected == []
        assert [(r.target_new, r.target_true) for r in project.queue.queued_facts()] == [
            ("=Rome", "Paris"), ("-5 degrees", "+49"), ("@home", "'quoted"),
        ]


def test_reimporting_fixed_rejected_rows_keeps_formula_like_values(tmp_path):
    path = write_facts_csv(tmp_path / "facts.csv", [("Spain", "The capital is", "=Lisbon", "Madrid")])
    with Project.create(tmp_path / "project") as project:
        report = project.queue.import_facts(path)
        errors = tmp_path / "errors.csv"
        export_rejected(report.rejected, errors)
        errors.write_text(errors.read_text(encoding="utf-8-sig").replace("The capital is", "The capital of Spain is"),
                          encoding="utf-8-sig")
        project.queue.import_facts(errors)
        assert [r.target_new for r in project.queue.queued_facts()] == ["=Lisbon"]


def test_a_user_csv_keeps_its_apostrophes(tmp_path):
    path = write_facts_csv(tmp_path / "facts.csv", [("France", "The capital of {} is", "'=Rome", "Paris")])
    with Project.create(tmp_path / "project") as project:
        project.queue.import_facts(path)
        assert project.queue.queued_facts()[0].target_new == "'=Rome"


def test_an_empty_project_file_is_left_untouched(tmp_path, capsys, facts_csv):
    folder = tmp_path / "project"
    folder.mkdir()
    log = folder / "project.sqlite"
    log.touch()
    for args in (("log", "--project", folder), ("import", facts_csv, "--project", folder)):
        rc, out, err = cli(capsys, *args)
        assert "is empty" in error_line(rc, err)
        assert log.stat().st_size == 0
    assert sorted(p.name for p in folder.iterdir()) == ["project.sqlite"]
