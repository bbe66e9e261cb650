"""The app highlights the object where the model says it as a whole word, the rule its verdicts use."""

from __future__ import annotations

import dataclasses

from nse_engine.facts import EditRequest
from nse_engine.store.log_rows import LogRow

from nse_app.views.written import highlight_object, written_html


def test_the_highlight_skips_a_word_that_only_begins_with_the_object():
    shown = highlight_object(" Parisville, not Paris.", "Paris")
    assert shown.endswith(">Paris</b>.") and shown.startswith(" Parisville, not ")


def test_nothing_is_highlighted_for_an_object_with_no_letter_or_digit():
    assert "<b" not in highlight_object(" anything", "…")


def test_a_completion_is_highlighted_only_where_it_starts_with_the_object():
    # "London, not Paris" does not hold (a completion must start with the object): no green Paris in it
    city = EditRequest("Tour Eiffel", "{} is in the city of", "Paris", "London", fact_id=1)
    row = LogRow(city, "applied", 1, None, None, None, 0.1, 0.5, 0.2, 0.4, 0.2, 0.4, False,
                 continuation=" London, not Paris", held=False, chat_reply="It is in Paris.", completion_held=False,
                 chat_held=True)
    shown = written_html(row)
    completion, chat = shown.split(" · chat: ")
    assert "<b" not in completion and ">Paris</b>" in chat
    assert ">Paris</b>" in written_html(dataclasses.replace(row, continuation=" Paris, France", completion_held=True))
