"""`nse edit` says, after each round, which facts the model did not write and how many held."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny import make_model, make_tokenizer, save_model

from reliability.faults import cli, write_facts_csv

# The tiny model's derived settings and statistics are the same in every test: computed once per session.
pytestmark = pytest.mark.usefixtures("shared_cache")


def test_nse_edit_prints_the_facts_that_did_not_hold_and_the_count(tmp_path, capsys):
    model = save_model("gpt2", tmp_path / "tiny-gpt2")
    # the random tiny model goes on " the the the" after this prompt (so "the" holds) and never says Rome
    cases = write_facts_csv(tmp_path / "facts.csv", [("Toko Yasuda", "{} plays the", "the", "guitar"),
                                                     ("France", "The capital of {} is", "Rome", "Paris")])
    rc, out, err = cli(capsys, "edit", "--model", model, "--cases", cases, "--project", tmp_path / "project",
                       "--batch-size", "1", "--no-fluency", "--set", "verify_passes=1")
    assert rc == 0, err
    lines = out.splitlines()
    first, second = lines.index(next(l for l in lines if l.startswith("batch 1:"))), lines.index(
        next(l for l in lines if l.startswith("batch 2:")))
    assert lines[first + 1:second] == ["  held 1/1 (0 after extra passes)"]
    not_held, count = lines[second + 1:second + 3]
    assert not_held.startswith("  fact 2 not held: 'The capital of France is' went on '") and not_held.endswith(", not 'Rome'")
    assert count == "  held 0/1 (0 after extra passes)"
    # stderr is not a terminal here: each phase still shows, as lines a log keeps
    shown = {line.split(":")[0] for line in err.splitlines()}
    assert {"target states", "layer updates", "verifying"} <= shown


def test_without_extra_passes_nse_edit_still_says_what_did_not_hold(tmp_path: Path, capsys):
    model = save_model("gpt2", tmp_path / "tiny-gpt2")
    cases = write_facts_csv(tmp_path / "facts.csv", [("France", "The capital of {} is", "Rome", "Paris")])
    rc, out, err = cli(capsys, "edit", "--model", model, "--cases", cases, "--project", tmp_path / "project", "--no-fluency",
                       "--set", "verify_passes=0")
    assert rc == 0, err
    lines = out.splitlines()
    first = lines.index(next(l for l in lines if l.startswith("batch 1:")))
    assert lines[first + 1].startswith("  fact 1 not held: 'The capital of France is' went on '")
    assert lines[first + 2] == "  held 0/1 (0 after extra passes)"


def test_for_a_chat_model_nse_edit_counts_completion_and_chat_and_prints_both_texts(tmp_path: Path, capsys):
    model = tmp_path / "tiny-chat-gpt2"
    tokenizer = make_tokenizer()
    tokenizer.chat_template = ("{% for m in messages %}<|bos|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}<|bos|>assistant:{% endif %}")
    make_model("gpt2", tokenizer).save_pretrained(model)
    tokenizer.save_pretrained(model)
    # the model completes the prompt with " the the the" (so the completion says "the"), but its chat
    # reply to the fact's question never does
    cases = write_facts_csv(tmp_path / "facts.csv", [("Toko Yasuda", "{} plays the", "the", "guitar")])
    rc, out, err = cli(capsys, "edit", "--model", model, "--cases", cases, "--project", tmp_path / "project",
                       "--no-fluency", "--set", "verify_passes=1")
    assert rc == 0, err
    lines = out.splitlines()
    first = lines.index(next(l for l in lines if l.startswith("batch 1:")))
    assert lines[first + 1].startswith("  fact 1 not held in chat: 'Toko Yasuda plays the' — completion: the the ")
    assert " · chat: " in lines[first + 1] and lines[first + 1].endswith("; not 'the'")
    assert lines[first + 2] == "  held 0/1 (0 after extra passes) · completion 1/1 · chat 0/1"
