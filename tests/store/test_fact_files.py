"""A JSON array of facts is read record by record by the json module itself: each record's problems
name the line it starts on, and an array that is not valid JSON is refused with the line and column
where it stops being JSON."""

import json

import pytest

from nse_engine.errors import ImportFormatError
from nse_engine.fact_files.fact_file import FactFile

FRANCE = {"subject": "France", "prompt": "The capital of {} is", "target_new": "Rome"}


def test_each_record_of_a_json_array_has_the_line_it_starts_on(tmp_path):
    path = tmp_path / "facts.json"
    spain = json.dumps(FRANCE | {"subject": "Spain", "prompt": "The capital is"}, indent=2)
    path.write_text(f"[\n  {json.dumps(FRANCE)},\n\n  {spain}\n]\n")
    with FactFile(path) as source:
        records = list(source.records)
    assert source.format == "NSE facts (JSON array)"
    assert [(r.line, r.request is not None) for r in records] == [(2, True), (4, False)]
    assert [(p.field, p.line) for p in records[1].problems] == [("prompt", 4)]


@pytest.mark.parametrize("text, where", [
    (f"[\n{json.dumps(FRANCE)}\n{json.dumps(FRANCE)}]", "line 3, column 1"),  # a comma missing between records
    (f"[{json.dumps(FRANCE)}]\n]", "line 2, column 1"),  # something after the array
    (f'[{json.dumps(FRANCE)},\n{{"subject": "Spain",\n "prompt": ]', "line 3, column 12"),
])
def test_an_array_that_is_not_valid_json_names_the_line_and_column(tmp_path, text, where):
    path = tmp_path / "facts.json"
    path.write_text(text)
    with pytest.raises(ImportFormatError, match=rf"facts.json: is not valid JSON: .* \({where}\)"):
        with FactFile(path) as source:
            list(source.records)
