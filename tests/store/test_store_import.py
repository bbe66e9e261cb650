"""Importing fact files: every format, every validation message, files that are not fact files."""

import csv
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from nse_engine.cli import main
from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.errors import Cancelled, ImportFormatError
from nse_engine.progress import JobControl
from nse_engine.store import ImportOptions, Project, TokenLimit, fact_from_fields
from nse_engine.store.csv_export import export_rejected

DATA = Path(__file__).with_name("data")
REPO = Path(__file__).resolve().parents[2]
HEADER = "subject,prompt,target_new,target_true,paraphrases,neighborhood,relation"


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "project") as project:
        yield project


def _csv(tmp_path, text: str, name="facts.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _problems(report) -> dict[int, list[str]]:
    """line -> ['field: message', ...] of each rejected row."""
    return {row.line: [f"{p.field}: {p.message}" for p in row.problems] for row in report.rejected}


# -- CSV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter, name", [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_dialects_all_import_the_same_facts(tmp_path, project, delimiter, name, bom, newline):
    d = delimiter
    rows = [
        d.join(["subject", "prompt", "target_new", "target_true", "paraphrases", "neighborhood", "relation"]),
        d.join(["France", "The capital of France is", "Rome", "Paris",
                "France's capital is | The French capital is", "The capital of Spain is => Madrid", "capital"]),
        d.join(["Danielle Darrieux", '"The mother tongue of {}, ""the star"", is"', "English", "French", "", "", ""]),
    ]
    path = _csv(tmp_path, bom + newline.join(rows) + newline)

    report = project.queue.import_facts(path)

    assert report.format == f"CSV ({name}-separated)"
    assert (report.rows_read, report.imported, report.rejected) == (2, 2, [])
    france, darrieux = project.queue.queued_facts()
    assert france == EditRequest(
        "France", "The capital of {} is", "Rome", "Paris",
        ("France's capital is", "The French capital is"), (NeighborhoodCheck("The capital of Spain is", "Madrid"),),
        "capital", fact_id=france.fact_id,
    )
    assert darrieux.prompt == 'The mother tongue of {}, "the star", is'
    fact = project.queries.fact(darrieux.fact_id)
    assert (fact.source_file, fact.source_line) == (str(path.resolve()), 3)


def test_only_required_columns_in_any_order_and_case(tmp_path, project):
    path = _csv(tmp_path, "Target_New,PROMPT,Subject\nRome,The capital of {} is,France\n")
    report = project.queue.import_facts(path)
    assert report.imported == 1 and report.warnings == []
    assert project.queue.queued_facts()[0].target_true is None


def test_every_validation_problem_names_line_and_field(tmp_path, project):
    project.queue.queue_facts([EditRequest("Japan", "The capital of {} is", "Seoul", "Tokyo")])
    lines = [
        HEADER,                                                                   # 1
        ",The capital of {} is,Rome,Paris,,,",                                   # 2 empty subject
        "France,The capital of {} is,,Paris,,,",                                 # 3 empty target
        "France,The capital city is,Rome,Paris,,,",                              # 4 no subject, no {}
        "Paris,Paris is the capital of Paris and,Rome,,,,",                      # 5 ambiguous subject
        "Spain,The capital of {} is,Madrid,madrid,,,",                           # 6 same targets
        'Italy,"The capital of {} is\x07",Oslo,Rome,,,',                         # 7 control character
        "Japan,The capital of {} is,Oslo,Tokyo,,,",                              # 8 already queued
        "Chile,The capital of {} is,Lima,Santiago,,,",                           # 9 conflicts with 10
        "Chile,The capital of {} is,Quito,Santiago,,,",                          # 10
        "Peru,The capital of {} is,Quito,Lima,,,",                               # 11 valid
        "Peru,The capital of {} is,Quito,Lima,,,",                               # 12 duplicate of 11
        "Cuba,The capital of {} is,Lima,Havana,,The capital of Peru is Lima,",   # 13 neighbourhood without =>
        "Oman,The capital of {} and {} is,Doha,Muscat,,,",                       # 14 two {}
        "Mali,The capital of {} is,Dakar,Bamako,,,,extra",                       # 15 too many values
        "Chad,The capital of {} is",                                             # 16 too few values
        'Iran,"The capital of',                                                  # 17 a field spanning lines,
        '{} is",Kabul,Tehran,,,',                                                # 18   with a newline in it
        "Laos,The capital of {} is,Hanoi,Vientiane,,,",                          # 19 valid
    ]
    report = project.queue.import_facts(_csv(tmp_path, "\n".join(lines) + "\n"))

    problems = _problems(report)
    assert sorted(problems) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]
    assert problems[2] == ["subject: is empty"]
    assert problems[3] == ["target_new: is empty"]
    assert problems[4] == ["prompt: contains neither '{}' nor the subject 'France'"]
    assert problems[5] == ["prompt: contains the subject 'Paris' 2 times; write '{}' where it belongs"]
    assert problems[6] == ["target_new: equals target_true ('madrid'); nothing would change"]
    assert problems[7] == ["prompt: contains the control character '\\x07'"]
    assert problems[8] == ["target_new: queued fact 1 already asks for 'Seoul' for this subject and prompt; edit or remove it first"]
    assert problems[9] == ["target_new: line 10 asks for 'Quito' for the same subject and prompt; keep one"]
    assert problems[10] == ["target_new: line 9 asks for 'Lima' for the same subject and prompt; keep one"]
    assert problems[12] == ["prompt: duplicate of line 11"]
    assert problems[13] == ["neighborhood: item 1 ('The capital of Peru is Lima') lacks '=>' between prompt and answer"]
    assert problems[14] == ["prompt: has 2 '{}'; exactly one is allowed"]
    assert problems[15] == ["(row): has 8 values but the header has 7 columns"]
    assert "(row): has 2 values but the header has 7 columns" in problems[16]
    assert problems[17] == ["prompt: contains the control character '\\n'"]
    assert [r.subject for r in project.queue.queued_facts()] == ["Japan", "Peru", "Laos"]
    assert project.queries.fact(project.queue.queued_facts()[2].fact_id).source_line == 19
    assert report.reasons()["conflict"] == 2


def test_text_too_long_for_the_model(tmp_path, project):
    path = _csv(tmp_path, f"{HEADER}\nFrance,The capital of {{}} is,Rome,Paris,{'long ' * 50},,\n")
    limit = TokenLimit(count_tokens=lambda text: len(text.split()), max_tokens=20)
    report = project.queue.import_facts(path, ImportOptions(token_limit=limit))
    assert _problems(report) == {2: ["paraphrases: needs 51 tokens; the model takes at most 20"]}


def test_spaces_around_values_are_removed_and_counted(tmp_path, project):
    report = project.queue.import_facts(_csv(tmp_path, "subject; prompt; target_new\nFrance ; The capital of {} is; Rome\n"))
    assert report.imported == 1 and report.trimmed_rows == 1
    assert project.queue.queued_facts()[0].subject == "France"


def test_unknown_columns_are_reported_not_silently_dropped(tmp_path, project):
    report = project.queue.import_facts(_csv(tmp_path, "subject,prompt,target_new,notes\nFrance,The capital of {} is,Rome,check\n"))
    assert report.imported == 1
    assert report.warnings == ["ignored columns (line 1): 'notes'"]


def test_rejected_rows_can_be_fixed_and_imported_again(tmp_path, project):
    path = _csv(tmp_path, f"{HEADER}\nFrance,The capital city is,Rome,Paris,,,\nSpain,The capital of {{}} is,=Lisbon,Madrid,,,\n")
    report = project.queue.import_facts(path)
    errors = tmp_path / "errors.csv"
    export_rejected(report.rejected, errors)

    with open(errors, encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["line"] == "2" and row["problems"].startswith("prompt: contains neither")
    assert row["subject"] == "France" and row["prompt"] == "The capital city is"
    fixed = errors.read_text(encoding="utf-8-sig").replace("The capital city is", "The capital of France is")
    errors.write_text(fixed, encoding="utf-8-sig")

    again = project.queue.import_facts(errors)
    assert again.imported == 1 and [r.subject for r in project.queue.queued_facts()] == ["Spain", "France"]
    assert again.warnings == ["ignored columns (line 1): 'line', 'problems'"]


def test_dry_run_changes_nothing(tmp_path, project):
    path = _csv(tmp_path, f"{HEADER}\nFrance,The capital of {{}} is,Rome,Paris,,,\nFrance,The capital of {{}} is,Oslo,Paris,,,\n")
    report = project.queue.import_facts(path, ImportOptions(dry_run=True))
    assert report.dry_run and report.rows_read == 2 and report.imported == 0 and len(report.rejected) == 2
    assert project.queries.facts() == []
    report = project.queue.import_facts(_csv(tmp_path, f"{HEADER}\nFrance,The capital of {{}} is,Rome,Paris,,,\n"), ImportOptions(dry_run=True))
    assert report.imported == 1 and project.queries.facts() == []


def test_progress_is_reported_up_to_the_whole_file(tmp_path, project):
    rows = "".join(f"S{i},The capital of {{}} is,Rome,Paris,,,\n" for i in range(5000))
    path = _csv(tmp_path, f"{HEADER}\n{rows}")
    seen = []
    project.queue.import_facts(path, control=JobControl(seen.append))
    assert len(seen) >= 3 and {p.phase for p in seen} == {"importing facts"}
    assert seen[-1].done == seen[-1].total == path.stat().st_size
    assert [p.done for p in seen] == sorted(p.done for p in seen)


# -- JSON formats ------------------------------------------------------------------------------


def test_counterfact_records(project):
    path = DATA / "counterfact.json"
    report = project.queue.import_facts(path)

    assert report.format == "CounterFact (JSON array)"
    assert report.imported == 2
    second_record_line = path.read_text().splitlines().index('    "case_id": 1,')  # its "{" is the line before
    assert _problems(report) == {
        second_record_line: ["requested_rewrite.target_new.str: equals target_true ('french'); nothing would change"]
    }
    assert "ignored keys: attribute_prompts, case_id, generation_prompts, pararel_idx" in report.warnings
    darrieux, madrid = project.queue.queued_facts()
    assert darrieux.subject == "Danielle Darrieux" and darrieux.prompt == "The mother tongue of {} is"
    assert (darrieux.target_new, darrieux.target_true, darrieux.relation) == ("English", "French", "P103")
    assert len(darrieux.paraphrases) == 2
    assert darrieux.neighborhood == (
        NeighborhoodCheck("The mother tongue of Léon Blum is", "French"),
        NeighborhoodCheck("The native language of Montesquieu is", "French"),
    )
    assert project.queries.fact(madrid.fact_id).source_line == path.read_text().splitlines().index('    "case_id": 2,')


def test_zsre_records(project):
    report = project.queue.import_facts(DATA / "zsre.json")
    assert report.format == "ZsRE (JSON array)"
    assert report.imported == 2
    assert _problems(report) == {4: ["src: contains neither '{}' nor the subject 'Lahti Town Hall'"]}
    assert "ignored keys: cond, pred" in report.warnings
    watts = project.queue.queued_facts()[0]
    assert watts == EditRequest(
        "Watts Humphrey", "What university did {} attend?", "University of Michigan", "Illinois Institute of Technology",
        ("What university did Watts Humphrey take part in?",),
        (NeighborhoodCheck("nq question: who played desmond doss father in hacksaw ridge", "Hugo Weaving"),),
        None, fact_id=watts.fact_id, questions=("What university did Watts Humphrey attend?",),  # src is a question too
    )


def test_our_jsonl_records(project):
    report = project.queue.import_facts(DATA / "facts.jsonl")
    assert report.format == "NSE facts (JSONL)"
    assert report.imported == 2 and report.rows_read == 4
    problems = _problems(report)
    assert problems[4][0].startswith("(record): is not valid JSON")
    assert problems[5] == ["target_new: missing (target_new)", "subject: is empty"]  # both problems at once
    germany = project.queue.queued_facts()[0]
    assert germany.neighborhood == (NeighborhoodCheck("The capital of Poland is", "Warsaw"),)
    assert germany.paraphrases == ("The capital city of Germany is",)


def test_a_single_json_object_and_json_lines_of_counterfact(tmp_path, project):
    record = json.loads((DATA / "counterfact.json").read_text())[0]
    single = tmp_path / "one.json"
    single.write_text(json.dumps(record, indent=2))
    assert project.queue.import_facts(single, ImportOptions(dry_run=True)).format == "CounterFact (JSON)"
    lines = tmp_path / "cf.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in json.loads((DATA / "counterfact.json").read_text())))
    report = project.queue.import_facts(lines)
    assert report.format == "CounterFact (JSONL)" and report.imported == 2 and list(_problems(report)) == [2]


def test_the_shared_development_facts(project):
    if not os.environ.get("NSE_DEV_FACTS"):
        pytest.skip("set NSE_DEV_FACTS to the full facts_dev.jsonl to import all of it")
    path = Path(os.environ["NSE_DEV_FACTS"])
    report = project.queue.import_facts(path)
    assert report.format == "NSE facts (JSONL)"
    assert report.rejected == [] and report.imported == report.rows_read == sum(1 for line in open(path) if line.strip())


# -- files that are not fact files -------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b" \r\n\t\n", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("subject,prompt,target_new\nZürich,{} is in,France\n".encode("latin-1"), "not UTF-8"),
        ("subject,prompt,target_new\n".encode("utf-16"), "UTF-16"),
        (b"subject,prompt\nFrance,The capital of {} is\n", "line 1: missing column 'target_new'"),
        (b"hello world\nthis is prose\n", "does not start with a header row"),
        (b"subject,subject,prompt,target_new\n", "column 'subject' appears more than once"),
        (b'[{"subject": "France", ', "not valid JSON"),
        (b'{"subject": "France",\n "prompt": ', "not valid JSON"),
        (b'[{"name": "x"}]', "neither our fact layout"),
        (b"[1, 2]", "not an object"),
        (b"[]", "empty JSON array"),
    ],
)
def test_unreadable_files_get_one_clear_error(tmp_path, project, content, message):
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFormatError, match=message):
        project.queue.import_facts(path)
    assert project.queries.facts() == []


def test_invalid_utf8_late_in_a_file_aborts_the_whole_import(tmp_path, project):
    rows = "".join(f"S{i},The capital of {{}} is,Rome,Paris,,,\n" for i in range(5000)).encode()
    path = tmp_path / "late.csv"
    path.write_bytes(f"{HEADER}\n".encode() + rows + b"Z\xfcrich,{} is in,France,,,,\n")
    with pytest.raises(ImportFormatError, match="line 5002 is not UTF-8"):
        project.queue.import_facts(path)
    assert project.queries.facts() == []


def test_missing_file_and_folder(tmp_path, project):
    with pytest.raises(ImportFormatError, match="cannot read"):
        project.queue.import_facts(tmp_path / "nope.csv")
    with pytest.raises(ImportFormatError, match="is a folder"):
        project.queue.import_facts(tmp_path)


# -- one fact, as the GUI's edit form checks it -------------------------------------------------


def test_single_fact_validation_for_the_edit_form():
    request, problems = fact_from_fields({"subject": "France", "prompt": "The capital of France is", "target_new": "Rome"})
    assert problems == [] and request.prompt == "The capital of {} is"
    request, problems = fact_from_fields({"subject": "France", "prompt": "The capital is", "target_new": ""})
    assert request is None
    assert [(p.field, p.code) for p in problems] == [("target_new", "empty"), ("prompt", "no_subject")]


# -- the command line --------------------------------------------------------------------------


def test_cli_import_and_log(tmp_path, capsys):
    folder = tmp_path / "new-project"
    good = _csv(tmp_path, f"{HEADER}\nFrance,The capital of {{}} is,=Rome,Paris,,,\n", "good.csv")
    bad = _csv(tmp_path, f"{HEADER}\nSpain,The capital is,Lisbon,Madrid,,,\n", "bad.csv")

    assert main(["import", str(good), "--project", str(folder), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"would import\s+1\n", out) and "dry run: nothing was changed" in out and not folder.exists()

    assert main(["import", str(good), "--project", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"created project {folder}" in out and re.search(r"format\s+CSV \(comma-separated\)", out)

    errors = tmp_path / "errors.csv"
    assert main(["import", str(bad), "--project", str(folder), "--errors", str(errors)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"rejected\s+1\n", out) and "no subject" in out and "line 2: prompt: contains neither" in out
    assert errors.exists()

    assert main(["log", "--project", str(folder), "--status", "queued"]) == 0
    assert "The capital of France is | Paris -> =Rome" in capsys.readouterr().out
    export = tmp_path / "log.csv"
    assert main(["log", "--project", str(folder), "--csv", str(export)]) == 0
    with open(export, encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["target_new"] == "'=Rome"  # neutralised: a spreadsheet must not run it
    assert (tmp_path / "log-batches.csv").exists()


def test_cli_reports_unreadable_files_without_traceback(tmp_path, capsys):
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    assert main(["import", str(binary), "--project", str(tmp_path / "p")]) == 2
    assert "binary file" in capsys.readouterr().err


def test_the_benchmark_script_measures_an_import(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_import", REPO / "benchmarks" / "bench_import.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "import.json"
    assert bench.main(["--rows", "500", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["rows"] == result["imported"] == 500 and result["rows_per_s"] > 0
    assert set(result["provenance"]) == {"commit", "command", "date"}


def test_cancelling_an_import_leaves_the_queue_as_it_was(tmp_path, project):
    rows = "".join(f"S{i},The capital of {{}} is,Rome,Paris,,,\n" for i in range(5000))
    control = JobControl(lambda progress: control.cancel() if progress.done else None)
    with pytest.raises(Cancelled):
        project.queue.import_facts(_csv(tmp_path, f"{HEADER}\n{rows}"), control=control)
    assert project.queries.facts() == []
