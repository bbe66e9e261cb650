"""A fact's chat questions (issue 35 item 2): read from CSV and JSON(L), kept by the log across a
reopen and a queue edit, written by the CSV export (which imports back to the same questions), and
refused, naming the field, when one is too long or says nothing. Logs written before keep working."""

from __future__ import annotations

import csv
import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from nse_engine.fact_files.validation import MAX_CHARACTERS, InvalidFactError
from nse_engine.facts import EditRequest
from nse_engine.store import Project
from nse_engine.store.csv_export import export_facts
from nse_engine.store.project import LOG_FILE

DATA = Path(__file__).with_name("data")
HEIHE = ("Which country is Heihe in?", "In which country would I find Heihe?")


def _reopened_questions(folder: Path) -> dict[str, tuple[str, ...]]:
    with Project.open(folder) as project:
        return {f.request.subject: f.request.questions for f in project.queries.facts()}


def test_csv_questions_are_stored_kept_on_reopen_and_exported_back(tmp_path):
    source = tmp_path / "facts.csv"
    source.write_text(
        "subject,prompt,target_new,target_true,paraphrases,questions\n"
        f"Heihe,{{}} is a city in the country of,Rwanda,China,Heihe lies in,{' | '.join(HEIHE)}\n"
        "Lyon,{} is a city in,Peru,France,,\n",
        encoding="utf-8",
    )
    with Project.create(tmp_path / "project") as project:
        report = project.queue.import_facts(source)
        assert (report.imported, report.rejected, report.warnings) == (2, [], [])  # no 'ignored columns'
        assert project.queue.queued_facts()[0].questions == HEIHE
    assert _reopened_questions(tmp_path / "project") == {"Heihe": HEIHE, "Lyon": ()}

    exported = tmp_path / "export.csv"
    with Project.open(tmp_path / "project") as project:
        export_facts(project, exported)
    with open(exported, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["questions"] for r in rows] == [" | ".join(HEIHE), ""]

    with Project.create(tmp_path / "again") as again:  # our export imports to the same questions
        assert again.queue.import_facts(exported).imported == 2
        assert [r.questions for r in again.queue.queued_facts()] == [HEIHE, ()]


def test_jsonl_questions_and_zsre_src_become_questions(tmp_path):
    source = tmp_path / "facts.jsonl"
    records = [{"subject": "Heihe", "prompt": "{} is a city in the country of", "target_new": "Rwanda",
                "questions": list(HEIHE)},
               {"subject": "Lyon", "prompt": "{} is a city in", "target_new": "Peru", "questions": "Where is Lyon?"}]
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    with Project.create(tmp_path / "project") as project:
        report = project.queue.import_facts(source)
        assert (report.imported, report.warnings) == (2, [])  # the key is read, not ignored
        report = project.queue.import_facts(DATA / "zsre.json")
        assert report.imported == 2
    questions = _reopened_questions(tmp_path / "project")
    assert questions["Heihe"] == HEIHE and questions["Lyon"] == ("Where is Lyon?",)
    assert questions["Watts Humphrey"] == ("What university did Watts Humphrey attend?",)  # ZsRE's src, as asked


def test_a_queue_edit_keeps_new_questions_and_an_old_log_opens_without_any(tmp_path):
    fact = EditRequest("Heihe", "{} is a city in the country of", "Rwanda", "China", questions=HEIHE)
    with Project.create(tmp_path / "project") as project:
        (fact_id,) = project.queue.queue_facts([fact])
        project.queue.update_fact(fact_id, dataclasses.replace(fact, questions=(" Is Heihe in Rwanda? ", "")))
    assert _reopened_questions(tmp_path / "project") == {"Heihe": ("Is Heihe in Rwanda?",)}

    conn = sqlite3.connect(tmp_path / "project" / LOG_FILE)  # the log as the last version wrote it
    conn.executescript("DELETE FROM _sqlite_migrations WHERE name = '0008_fact_questions';"
                       "ALTER TABLE facts DROP COLUMN questions;")
    conn.close()
    assert _reopened_questions(tmp_path / "project") == {"Heihe": ()}


@pytest.mark.parametrize("question, message", [
    ("Q" * 501, f"has 501 characters; at most {MAX_CHARACTERS['questions']} are allowed each"),
    ("???", "has no letter or digit"),
    ("Which country is {} in?", "has braces; write the subject itself"),
])
def test_a_question_that_is_too_long_or_says_nothing_is_refused(tmp_path, question, message):
    with Project.create(tmp_path / "project") as project:
        with pytest.raises(InvalidFactError) as refused:
            project.queue.queue_facts([EditRequest("Heihe", "{} is in", "Rwanda", questions=(question,))])
        assert [p.field for p in refused.value.problems] == ["questions"]
        assert message in str(refused.value)
        assert project.queue.queued_facts() == []

    source = tmp_path / "facts.csv"
    source.write_text(f"subject,prompt,target_new,questions\nHeihe,{{}} is in,Rwanda,{question}\n", encoding="utf-8")
    with Project.create(tmp_path / "csv") as project:
        report = project.queue.import_facts(source)
        assert report.imported == 0
        assert [(p.line, p.field) for p in report.rejected[0].problems] == [(2, "questions")]
