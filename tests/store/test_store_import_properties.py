"""Whatever bytes a user imports, the importer answers with per-row problems or one format error,
and it never loses a valid row."""

import csv
import io
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.errors import ImportFormatError
from nse_engine.store import ImportOptions, Project

# Function-scoped fixtures (conftest's isolated folders) are not reset between examples; that is
# fine here, as each example imports into its own copy of an empty project.
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def empty_project(tmp_path_factory) -> Path:
    """An empty project to copy: creating one per example would spend most of the time in fsync."""
    folder = tmp_path_factory.mktemp("template") / "project"
    Project.create(folder).close()
    return folder

_word = st.text(st.characters(categories=("L", "N"), exclude_characters="{}"), min_size=1, max_size=8)
_phrase = st.lists(_word, min_size=1, max_size=4).map(" ".join)


@st.composite
def valid_facts(draw) -> list[EditRequest]:
    subjects = draw(st.lists(_phrase, min_size=1, max_size=8, unique=True))
    facts = []
    for subject in subjects:
        before = draw(st.sampled_from(["The capital of", "Where is", "", "Question: who made"]))
        after = draw(st.sampled_from(["is", "located?", ", which is in", ""]))
        template = " ".join(part for part in (before, "{}", after) if part)
        target_new, target_true = draw(_phrase), draw(st.one_of(st.none(), _phrase))
        if target_true is not None and target_true.casefold() == target_new.casefold():
            target_true = None
        facts.append(EditRequest(
            subject, template, target_new, target_true,
            paraphrases=tuple(draw(st.lists(_phrase, max_size=2))),
            neighborhood=tuple(NeighborhoodCheck(p, t) for p, t in draw(st.lists(st.tuples(_phrase, _phrase), max_size=2))),
            relation=draw(st.one_of(st.none(), _word)),
        ))
    return facts


def _cells(fact: EditRequest, verbatim: bool) -> list[str]:
    """A fact as CSV cells; `verbatim` writes the subject into the prompt instead of {}."""
    return [
        fact.subject,
        fact.text if verbatim and fact.prompt.replace("{}", "").count(fact.subject) == 0 else fact.prompt,
        fact.target_new,
        fact.target_true or "",
        " | ".join(fact.paraphrases),
        " | ".join(f"{n.prompt} => {n.target}" for n in fact.neighborhood),
        fact.relation or "",
    ]


_junk_cell = st.text(max_size=12)  # anything: quotes, newlines, control characters, braces
_junk_row = st.lists(_junk_cell, max_size=9).map(lambda cells: ["~" + c for c in cells[:1]] + cells[1:])


@pytest.fixture(scope="module")
def shared_project(empty_project):
    """One project for dry runs, which leave it unchanged."""
    with Project.open(empty_project) as project:
        yield project


def _dry_run(project: Project, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "facts.csv"
        path.write_bytes(content)
        try:
            report = project.queue.import_facts(path, ImportOptions(dry_run=True))
        except ImportFormatError:
            return
        finally:
            assert project.queries.count_facts() == 0
        assert report.rows_read == report.imported + len(report.rejected) + len(report.skipped)


def _import(empty_project: Path, content: bytes) -> list[EditRequest]:
    """Import `content` into a fresh copy of the empty project; the queue afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "facts.csv"
        path.write_bytes(content)
        shutil.copytree(empty_project, Path(folder) / "project")
        with Project.open(Path(folder) / "project") as project:
            report = project.queue.import_facts(path)
            queued = project.queue.queued_facts()
            assert report.rows_read == report.imported + len(report.rejected) + len(report.skipped)
            assert [r.fact_id for r in queued] == report.imported_ids
            return queued


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(shared_project, content):
    _dry_run(shared_project, content)


@SETTINGS
@given(st.lists(st.lists(_junk_cell, max_size=8), max_size=8), st.sampled_from([",", ";", "\t"]), st.booleans())
def test_random_csv_text_never_crashes(shared_project, rows, delimiter, with_header):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    if with_header:
        writer.writerow(["subject", "prompt", "target_new", "target_true"])
    writer.writerows(rows)
    _dry_run(shared_project, out.getvalue().encode("utf-8", "surrogatepass"))


@settings(SETTINGS, max_examples=40)
@given(
    valid_facts(),
    st.lists(_junk_row, max_size=6),
    st.randoms(use_true_random=False),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_every_valid_row_among_junk_is_imported(empty_project, facts, junk, rng, delimiter, line_end, bom):
    rows = [("valid", fact) for fact in facts] + [("junk", cells) for cells in junk]
    rng.shuffle(rows)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(["subject", "prompt", "target_new", "target_true", "paraphrases", "neighborhood", "relation"])
    for kind, row in rows:
        writer.writerow(_cells(row, verbatim=rng.random() < 0.5) if kind == "valid" else row)

    queued = _import(empty_project, ("\ufeff" if bom else "").encode() + out.getvalue().encode("utf-8", "surrogatepass"))

    expected = [row for kind, row in rows if kind == "valid"]
    imported = [r for r in queued if not r.subject.startswith("~")]
    assert [(r.subject, r.prompt, r.target_new, r.target_true, r.paraphrases, r.neighborhood, r.relation) for r in imported] == [
        (f.subject, f.prompt, f.target_new, f.target_true, f.paraphrases, f.neighborhood, f.relation) for f in expected
    ]
