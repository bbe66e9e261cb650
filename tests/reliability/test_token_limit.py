"""Facts too long for the model (or, with no model, for a safe default) are refused at import."""

from __future__ import annotations

from nse_engine.store import Project

from reliability.faults import FACTS, cli, write_facts_csv


def test_import_without_a_model_refuses_a_huge_target(tmp_path, capsys):
    cases = write_facts_csv(tmp_path / "facts.csv", [FACTS[0], ("Spain", "The capital of {} is", "word " * 25_000, "Madrid")])
    rc, out, err = cli(capsys, "import", cases, "--project", tmp_path / "project")
    assert rc == 1, err
    assert "line 3: target_new: has 124,999 characters; at most 200 are allowed: shorten it" in out
    with Project.open(tmp_path / "project") as project:
        assert [f.request.subject for f in project.queries.facts()] == ["France"]


def test_nse_edit_applies_the_models_context_length(tmp_path, capsys, tiny_model_dir):
    long_prompt = "Qzx " * 100 + "the capital of {} is"  # 420 bytes: within the default, beyond the tiny model's 128 positions
    cases = write_facts_csv(tmp_path / "facts.csv", [FACTS[0], ("Spain", long_prompt, "Rome", "Madrid")])
    rc, out, err = cli(capsys, "edit", "--model", tiny_model_dir, "--cases", cases, "--project", tmp_path / "p")
    assert rc == 0, err
    assert "1 row of" in out and "was rejected" in out and "the model takes at most" in out
    assert "line 3: prompt: together with the subject and the new object, needs" in out
    with Project.open(tmp_path / "p") as project:
        assert [f.request.subject for f in project.queries.facts()] == ["France"]
    rc, out, err = cli(capsys, "import", cases, "--project", tmp_path / "p", "--dry-run")
    assert "the model takes at most" not in out  # without the model: the default limit, which it passes
