"""The app highlights the object where the model says it as a whole word, the rule its verdicts use."""

from __future__ import annotations

from nse_app.views.written import highlight_object


def test_the_highlight_skips_a_word_that_only_begins_with_the_object():
    shown = highlight_object(" Parisville, not Paris.", "Paris")
    assert shown.endswith(">Paris</b>.") and shown.startswith(" Parisville, not ")


def test_nothing_is_highlighted_for_an_object_with_no_letter_or_digit():
    assert "<b" not in highlight_object(" anything", "…")
