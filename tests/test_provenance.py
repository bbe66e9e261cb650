"""Result files say which commit, command and date produced them, and writing one never fails on git."""

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from nse_engine import provenance as prov


def test_provenance_has_the_commit_command_and_date():
    record = prov.provenance()
    assert set(record) == {"commit", "command", "date"}
    assert record["command"]
    date = datetime.fromisoformat(record["date"])
    assert date.utcoffset() == timedelta(0)
    assert abs((datetime.now(timezone.utc) - date).total_seconds()) < 60


@pytest.mark.skipif(shutil.which("git") is None or not (prov.REPO / ".git").exists(), reason="not a git checkout")
def test_the_commit_is_head_of_this_checkout():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=prov.REPO, capture_output=True, text=True,
                          timeout=10, check=True).stdout.strip()
    assert prov.commit().removesuffix("-dirty") == head


def test_without_git_the_commit_is_unknown(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert prov.commit() == "unknown"


def test_the_command_line_is_relative_to_the_repository(monkeypatch):
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "research.key_geometry", "--cases",
                                           str(prov.REPO / "facts.jsonl")])
    assert prov.command_line().endswith("-m research.key_geometry --cases facts.jsonl")


def test_write_result_adds_the_provenance(tmp_path):
    out = tmp_path / "results" / "run.json"
    prov.write_result(out, {"efficacy": 0.9, "provenance": {"commit": "stale"}})
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["efficacy"] == 0.9
    assert set(written["provenance"]) == {"commit", "command", "date"}
    assert written["provenance"]["commit"] != "stale"


def test_a_result_names_the_commit_its_process_started_from(monkeypatch):
    moved_on = "f" * 40
    monkeypatch.setattr(prov, "_git", lambda *args: moved_on)  # commits made while a long run went on
    assert prov.commit().startswith(moved_on)
    assert prov.provenance()["commit"] == prov.COMMIT_AT_START
    assert not prov.COMMIT_AT_START.startswith(moved_on)
