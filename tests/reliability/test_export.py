"""Exporting the edited model: only into a new or empty folder, never over the base model or a
project, all or nothing, with edits.json listing exactly the edits in effect; `nse export`
writes the same folder from the command line."""

from __future__ import annotations

import csv
import hashlib
import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nse_engine.errors import OutputFileError
from nse_engine.store import Project

from reliability.faults import FACTS, cli, error_line, nse_env, read_only, run_nse

PARAPHRASE = "In the capital of France people speak of"
QUESTIONS = ["Which city is the capital of {}?", "What is {}'s capital called?"]


def _write_cases(path: Path) -> Path:
    """Four facts, the first with a paraphrase, each with two chat questions, as a CSV a user would write."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subject", "prompt", "target_new", "target_true", "paraphrases", "questions"])
        for i, fact in enumerate(FACTS[:4]):
            writer.writerow([*fact, PARAPHRASE if i == 0 else "", " | ".join(q.format(fact[0]) for q in QUESTIONS)])
    return path


@pytest.fixture(scope="module")
def edited_project(tmp_path_factory, tiny_model_dir, _shared_cache) -> Path:
    """A project on the tiny model: two batches of two facts by `nse edit`, then the second undone."""
    from nse_engine.cli import main
    from nse_engine.model.loading import load_model
    from nse_engine.workspace import Workspace

    root = tmp_path_factory.mktemp("export")
    project = root / "project"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NSE_CACHE_DIR", str(_shared_cache))
        env.setenv("NSE_DATA_DIR", str(root / "data"))
        assert main(["edit", "--model", str(tiny_model_dir), "--cases", str(_write_cases(root / "facts.csv")),
                     "--project", str(project), "--batch-size", "2", "--no-fluency"]) == 0
        workspace = Workspace.open(load_model(str(tiny_model_dir), device="cpu"), project)
        with workspace.closing():
            workspace.undo_last_batch()
    return project


def _digest(folder: Path) -> dict[str, str]:
    """Every file below `folder` by name, with its content's hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _applied(project: Path) -> list[int]:
    with Project.open(project, read_only=True) as log:
        return [f.id for f in log.queries.facts(status="applied")]


def _no_leftovers(parent: Path) -> None:
    assert not [p.name for p in parent.iterdir() if p.name.startswith(".")], "a hidden staging folder was left"


# ---- where an export may go ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["the folder itself", "inside it", "the folder holding it"])
def test_export_over_the_base_model_is_refused_and_its_weights_untouched(capsys, edited_project, tiny_model_dir,
                                                                         where):
    target = {"the folder itself": tiny_model_dir, "inside it": tiny_model_dir / "exported",
              "the folder holding it": tiny_model_dir.parent}[where]
    before = _digest(tiny_model_dir.parent)
    rc, out, err = cli(capsys, "export", "--project", edited_project, "--out", target)
    assert "the base model" in error_line(rc, err)
    assert _digest(tiny_model_dir.parent) == before
    assert not (tiny_model_dir / "exported").exists()


def test_replacing_the_base_model_folder_is_refused_even_when_confirmed(edited_project, tiny_model_dir):
    """The app may replace a non-empty folder after asking; never the base model's."""
    from nse_engine.model.loading import load_model
    from nse_engine.model_export import export_model

    before = _digest(tiny_model_dir)
    loaded = load_model(str(tiny_model_dir), device="cpu")
    with Project.open(edited_project, read_only=True) as project:
        with pytest.raises(OutputFileError, match="the base model"):
            export_model(loaded, project, tiny_model_dir, None, replace=True, allow_unedited=True)
    assert _digest(tiny_model_dir) == before


def test_export_into_a_non_empty_folder_or_a_project_is_refused(capsys, edited_project, tmp_path):
    folder = tmp_path / "old-export"
    folder.mkdir()
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"shard")
    (folder / "notes.txt").write_text("mine")
    before = _digest(folder)
    rc, out, err = cli(capsys, "export", "--project", edited_project, "--out", folder)
    line = error_line(rc, err)
    assert "not empty" in line and "notes.txt" in line and str(folder) in line
    assert _digest(folder) == before

    project_before = _digest(edited_project)
    for inside in (edited_project, edited_project / "exported"):
        rc, out, err = cli(capsys, "export", "--project", edited_project, "--out", inside)
        assert "project" in error_line(rc, err)
    assert _digest(edited_project) == project_before


def test_a_confirmed_replace_leaves_no_stale_shard_or_index(edited_project, tiny_model_dir, tmp_path):
    """Replacing an older sharded export: the new folder holds only what this export wrote."""
    from nse_engine.model_export import export_project
    from nse_engine.model.loading import load_model

    folder = tmp_path / "old-export"
    folder.mkdir()
    for name in ("model-00001-of-00002.safetensors", "model.safetensors.index.json"):
        (folder / name).write_text("old")
    fresh = tmp_path / "fresh"
    export_project(load_model(str(tiny_model_dir), device="cpu"), edited_project, fresh)

    from nse_engine.model_export import export_model

    loaded = load_model(str(tiny_model_dir), device="cpu")
    with Project.open(edited_project, read_only=True) as project:
        export_model(loaded, project, folder, None, replace=True, allow_unedited=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in fresh.iterdir())
    _no_leftovers(tmp_path)


# ---- all or nothing ----------------------------------------------------------------------------


def _export_with_file_size_limit(project: Path, out: Path, limit: int) -> subprocess.CompletedProcess:
    """`nse export` in a process whose writes past `limit` bytes fail (EFBIG), as on a full disk."""

    def limit_writes() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "nse_engine.cli", "export", "--project", str(project),
                           "--out", str(out)], capture_output=True, text=True, env=nse_env(), timeout=300,
                          preexec_fn=limit_writes)


@pytest.mark.parametrize("existing", [False, True], ids=["new folder", "empty folder"])
def test_a_write_that_fails_leaves_no_partial_folder(edited_project, tmp_path, existing):
    parent = tmp_path / "exports"
    parent.mkdir()
    out = parent / "edited"
    if existing:
        out.mkdir()
    result = _export_with_file_size_limit(edited_project, out, 100_000)  # the log and config fit, the weights do not
    line = error_line(result.returncode, result.stderr)
    assert str(out) in line and "nothing was written" in line
    assert (list(out.iterdir()) == []) if existing else not out.exists()
    _no_leftovers(parent)


def test_cancel_after_the_weights_are_written_leaves_no_folder(edited_project, tiny_model_dir, tmp_path):
    from nse_engine.errors import Cancelled
    from nse_engine.model.loading import load_model
    from nse_engine.model_export import export_project
    from nse_engine.progress import JobControl

    def cancel_after_the_weights(progress):
        if progress.phase == "export" and progress.done == 1:
            control.cancel()

    control = JobControl(cancel_after_the_weights)
    with pytest.raises(Cancelled):
        export_project(load_model(str(tiny_model_dir), device="cpu"), edited_project, tmp_path / "edited", control)
    assert list(tmp_path.iterdir()) == []


def test_a_staging_folder_left_by_a_killed_export_is_cleared_by_the_next(tmp_path):
    from nse_engine.export_folder import staged_folder

    gone = subprocess.Popen(["true"])
    gone.wait()
    leftover = tmp_path / f".edited.export-{gone.pid}-0a1b2c3d"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half a model")
    with staged_folder(tmp_path / "edited") as staging:
        (staging / "config.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["edited"]
    assert [p.name for p in (tmp_path / "edited").iterdir()] == ["config.json"]


def test_a_read_only_place_is_refused_before_the_model_loads(capsys, edited_project, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    with read_only(media):
        rc, out, err = cli(capsys, "export", "--project", edited_project, "--out", media / "edited")
        assert "read-only" in error_line(rc, err)
        assert list(media.iterdir()) == []


# ---- what the folder says ----------------------------------------------------------------------


def test_edits_json_lists_exactly_the_edits_in_effect_after_a_batch_and_an_undo(edited_project, tiny_model_dir,
                                                                                 tmp_path):
    from nse_engine.model.loading import load_model
    from nse_engine.model_export import export_project

    applied = _applied(edited_project)
    assert applied and set(applied) <= {1, 2}  # the first batch's facts; the second batch was undone
    out = tmp_path / "edited"
    loaded = load_model(str(tiny_model_dir), device="cpu")
    assert export_project(loaded, edited_project, out) == len(applied)

    record = json.loads((out / "edits.json").read_text(encoding="utf-8"))
    assert [e["fact_id"] for e in record["edits"]] == applied
    with Project.open(edited_project, read_only=True) as project:
        facts = {f.id: f for f in project.queries.facts()}
        batch = project.queries.batch(1)
        assert record["base_model"]["fingerprint"] == project.meta.base_model_fingerprint
    assert record["base_model"]["source"] == str(tiny_model_dir)
    assert record["method"] == "NSE"
    for edit in record["edits"]:
        request = facts[edit["fact_id"]].request
        assert (edit["subject"], edit["prompt"], edit["target_new"], edit["target_true"]) == (
            request.subject, request.prompt, request.target_new, request.target_true)
        assert edit["batch"] == 1 and edit["applied_at"] == batch.finished_at and edit["method"] == "NSE"
        assert edit["questions"] == [q.format(request.subject) for q in QUESTIONS]  # the chat questions, in order
    if 1 in applied:
        assert record["edits"][0]["paraphrases"] == [PARAPHRASE]
    assert [b["id"] for b in record["batches"]] == [1] and record["batches"][0]["settings"] == batch.hparams

    card = (out / "README.md").read_text(encoding="utf-8")
    assert "NSE Studio" in card and f"Edits in effect: {len(applied)}" in card and "edits.json" in card
    assert str(tiny_model_dir) in card and FACTS[0][2] in card
    assert FACTS[2][2] not in card  # an undone edit is not described


def test_nse_export_in_a_real_process_writes_a_loadable_edited_folder(edited_project, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "edited"
    result = run_nse("export", "--project", edited_project, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"to {out}" in result.stdout and "edits.json" in result.stdout
    exported = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    changed = [name for name, p in exported.state_dict().items() if not torch.equal(p, base.state_dict()[name])]
    assert changed and all(".mlp.c_proj." in name for name in changed)  # the edited layers, nothing else
    assert len(json.loads((out / "edits.json").read_text())["edits"]) == len(_applied(edited_project))
    _no_leftovers(tmp_path)


def test_exporting_nothing_edited_needs_unedited(capsys, tiny_model_dir, tmp_path):
    with Project.create(tmp_path / "empty", str(tiny_model_dir), "fp"):
        pass
    out = tmp_path / "exported"
    rc, _, err = cli(capsys, "export", "--project", tmp_path / "empty", "--out", out)
    assert "--unedited" in error_line(rc, err) and not out.exists()

    rc, stdout, err = cli(capsys, "export", "--project", tmp_path / "empty", "--out", out, "--unedited")
    assert rc == 0, err
    assert json.loads((out / "edits.json").read_text())["edits"] == []
    assert "unchanged" in (out / "README.md").read_text() and "unchanged" in stdout
    assert _digest(out)["model.safetensors"] == _digest(tiny_model_dir)["model.safetensors"]
