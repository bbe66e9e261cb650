"""The cost-growth table can be completed one row at a time without losing or mixing rows."""

import json

import pytest

from benchmarks.cost_growth import kept_rows
from nse_engine.provenance import write_result


def _row(size: str, batch: int) -> dict:
    return {"size": size, "batch_size": batch, "parameters": 1, "seconds_per_edit_by_phase": {"target_states": 1.0}}


def test_keep_takes_the_rows_not_redone_each_with_the_provenance_it_was_measured_under(tmp_path):
    out = tmp_path / "cost_growth.json"
    write_result(out, {"stats_tokens": 16384, "target_state_steps": 10,
                       "results": [_row("135m", 10), _row("1b", 10) | {"provenance": {"commit": "abc"}}]})
    written_under = json.loads(out.read_text())["provenance"]

    kept = kept_rows(out, 16384, 10, {("135m", 10)})

    assert [(r["size"], r["batch_size"]) for r in kept] == [("1b", 10)]
    assert kept[0]["provenance"] == {"commit": "abc"}
    assert kept_rows(out, 16384, 10, set())[0]["provenance"] == written_under


def test_keep_refuses_rows_measured_with_other_steps(tmp_path):
    out = tmp_path / "cost_growth.json"
    write_result(out, {"stats_tokens": 16384, "target_state_steps": 25, "results": [_row("135m", 10)]})
    with pytest.raises(SystemExit, match="25 steps"):
        kept_rows(out, 16384, 10, set())
    assert kept_rows(tmp_path / "absent.json", 16384, 10, set()) == []
