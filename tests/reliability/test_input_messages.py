"""Messages about a user's input name the field, the line and the file, and say what to do; a
command that fails on its input leaves nothing behind (issue 34, items 6, 8 and 9)."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from nse_engine.errors import ImportFormatError
from nse_engine.progress import JobControl
from nse_engine.store import ImportOptions, Project

from tiny import save_model

from reliability.faults import FACTS, cli, error_line, run_nse, write_facts_csv

ROW = {"subject": "France", "prompt": "The capital of {} is", "target_new": "Rome"}


def test_a_huge_subject_is_called_a_subject_too_long(tmp_path, capsys):
    cases = tmp_path / "facts.jsonl"
    cases.write_text(json.dumps({**ROW, "subject": "x" * 10 * 2**20}) + "\n" + json.dumps(ROW | {"subject": "Spain"}) + "\n")
    rc, out, err = cli(capsys, "import", cases, "--project", tmp_path / "p")
    assert rc == 1, err
    assert "line 1: subject: has 10,485,760 characters; at most 200 are allowed: shorten it" in out
    assert "target_new" not in out and "bytes long" not in out


def test_a_huge_subject_in_a_csv_is_called_a_subject_too_long(tmp_path, capsys):
    """Longer than the csv module's own cell limit (131,072), still named by its field."""
    cases = write_facts_csv(tmp_path / "facts.csv", [("x" * 10_000_000, "The capital of {} is", "Rome", "Paris"),
                                                     FACTS[1]])
    rc, out, err = cli(capsys, "import", cases, "--project", tmp_path / "p")
    assert rc == 1, err
    assert "line 2: subject: has 10,000,000 characters; at most 200 are allowed: shorten it" in out
    assert "(row)" not in out and "cell" not in out
    with Project.open(tmp_path / "p") as project:
        assert [f.request.subject for f in project.queries.facts()] == ["Germany"]


@pytest.mark.parametrize("target", ["\u200b", "…", "€", "\U0001F1EB\U0001F1F7"])
def test_an_object_or_subject_with_no_letter_or_digit_is_refused(tmp_path, capsys, target):
    cases = write_facts_csv(tmp_path / "facts.csv", [FACTS[0], ("Spain", "The capital of {} is", target, "Madrid"),
                                                     (target, "The capital of {} is", "Rome", "Paris")])
    rc, out, err = cli(capsys, "import", cases, "--project", tmp_path / "p")
    assert rc == 1, err
    assert f"line 3: target_new: {target!r} has no letter or digit; write it in words" in out
    assert f"line 4: subject: {target!r} has no letter or digit; write it in words" in out
    with Project.open(tmp_path / "p") as project:
        assert [f.request.subject for f in project.queries.facts()] == ["France"]


def test_a_csv_with_carriage_returns_only_is_told_to_change_its_line_endings(tmp_path, capsys):
    cases = tmp_path / "mac.csv"
    cases.write_bytes(b'subject,prompt,target_new\r"France","The capital of {} is","Rome"\r')
    message = error_line(*cli(capsys, "import", cases, "--project", tmp_path / "p")[::2])
    assert "mac.csv" in message and "carriage return" in message and "(LF) line endings" in message
    assert "universal-newline" not in message
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("name, text, hint", [
    ("facts.csv", "subject,prompt,target_new\nFrance,The capital of {} is,Rome\n", "in Excel: 'CSV UTF-8'"),
    ("facts.jsonl", json.dumps(ROW) + "\n", "in a text editor: Save As, encoding UTF-8"),
])
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16"])
def test_utf16_is_called_utf16_with_advice_for_its_kind_of_file(tmp_path, capsys, name, text, hint, codec):
    cases = tmp_path / name
    cases.write_bytes(text.encode(codec))
    message = error_line(*cli(capsys, "import", cases, "--project", tmp_path / "p")[::2])
    assert f"{name}: is UTF-16 text" in message and hint in message and "binary" not in message


def test_a_file_given_as_the_project_folder_is_called_a_file(tmp_path, capsys):
    cases = write_facts_csv(tmp_path / "facts.csv", FACTS[:1])
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("mine")
    message = error_line(*cli(capsys, "import", cases, "--project", not_a_folder)[::2])
    assert f"{not_a_folder} is a file, not a folder" in message and "File exists" not in message
    assert not_a_folder.read_text() == "mine"


@pytest.mark.parametrize("command", ["import", "edit"])
def test_a_missing_fact_file_creates_no_project(tmp_path, command):
    project = tmp_path / "NEW"
    args = ("import", tmp_path / "missing.csv", "--project", project) if command == "import" else (
        "edit", "--model", tmp_path / "no-model", "--cases", tmp_path / "missing.csv", "--project", project)
    result = run_nse(*args)
    assert "missing.csv" in error_line(result.returncode, result.stderr)
    assert "created project" not in result.stdout
    assert not project.exists()


def test_a_file_cut_short_while_it_is_imported_imports_nothing(tmp_path):
    rows = [(f"Country {i}", "The capital of {} is", "Rome", "Paris") for i in range(6000)]
    cases = write_facts_csv(tmp_path / "facts.csv", rows)
    size = cases.stat().st_size

    def truncate(progress):  # a copy or download still writing the file, seen from the reader
        if progress.done and cases.stat().st_size == size:
            with open(cases, "r+b") as fh:
                fh.truncate(size // 2)

    with Project.create(tmp_path / "p") as project:
        with pytest.raises(ImportFormatError) as failure:
            project.queue.import_facts(cases, control=JobControl(truncate))
        message = str(failure.value)
        assert message.startswith("facts.csv: changed while it was read") and "nothing was imported" in message
        assert "reading stopped at line" in message
        assert project.queries.count_facts() == 0


def test_a_dry_run_does_not_log_that_it_imported(tmp_path, caplog):
    cases = write_facts_csv(tmp_path / "facts.csv", FACTS[:3])
    with Project.create(tmp_path / "p") as project, caplog.at_level(logging.INFO, logger="nse_engine.store.fact_import"):
        project.queue.import_facts(cases, ImportOptions(dry_run=True))
        assert "would import 3 facts" in caplog.text and "imported" not in caplog.text
        caplog.clear()
        project.queue.import_facts(cases)
        assert "imported 3 facts" in caplog.text


def test_nse_edit_edits_only_the_facts_of_its_cases_file(tmp_path, capsys, tiny_model_dir):
    earlier = write_facts_csv(tmp_path / "a.csv", FACTS[:2])
    cases = write_facts_csv(tmp_path / "b.csv", FACTS[2:4])
    project = tmp_path / "p"
    rc, out, err = cli(capsys, "import", earlier, "--project", project)
    assert rc == 0, err
    rc, out, err = cli(capsys, "edit", "--model", tiny_model_dir, "--cases", cases, "--project", project)
    assert rc == 0, err
    assert f"2 facts queued from other files stay queued; this run edits only the facts of {cases}" in out
    assert "applied 2/2" in out
    with Project.open(project) as log:
        assert [f.request.subject for f in log.queries.facts(status="queued")] == ["France", "Germany"]
        assert {f.request.subject for f in log.queries.facts() if f.status != "queued"} == {"Italy", "Spain"}


def test_a_different_base_model_is_refused_naming_both_models(tmp_path, capsys, tiny_model_dir):
    cases = write_facts_csv(tmp_path / "facts.csv", FACTS[:1])
    base, other = tmp_path / "base-model", tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, base)
    save_model("gpt2", other, seed=1)
    project = tmp_path / "p"
    rc, out, err = cli(capsys, "edit", "--model", base, "--cases", cases, "--project", project)
    assert rc == 0, err

    message = error_line(*cli(capsys, "edit", "--model", other, "--cases", cases, "--project", project)[::2])
    assert f"edited on {base} " in message and f"not on the model loaded, {other} " in message
    assert "Load that model" in message

    shutil.rmtree(base)
    save_model("gpt2", base, seed=1)  # other weights where the base model was (an export over it)
    message = error_line(*cli(capsys, "edit", "--model", base, "--cases", cases, "--project", project)[::2])
    assert f"the files in {base} are not the ones the project was made from" in message
