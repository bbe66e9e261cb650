"""The answer rule: an object is said only as whole words, case and spacing folded, and an object
with no letter or digit is never said."""

from __future__ import annotations

import pytest

from nse_engine.answers import answer_span, mentions, says


@pytest.mark.parametrize("generated", [" Parisville is a town", " Parisian food", " Paris2"])
def test_a_word_that_only_begins_with_the_object_does_not_say_it(generated):
    assert not says(generated, "Paris")
    assert not mentions(f"The answer is{generated}", "Paris")


@pytest.mark.parametrize("generated", [" Paris.", " Paris, France", " Paris", "Paris's museums", " «Paris»", " PARIS is"])
def test_the_object_followed_by_punctuation_or_space_is_said(generated):
    assert says(generated, "Paris")
    assert mentions(f"I think {generated}", "paris")


def test_objects_with_punctuation_of_their_own():
    assert says(" U.S. Army", "U.S.") and mentions("He served in the U.S. Army.", "U.S.")
    assert says(" the U.S. Army", "the U.S. Army") and says(" The  U.S.\nArmy", "the u.s. army")
    assert not mentions("He served in the USA", "U.S.")
    assert says(" C++ and C", "C++") and not says(" C is older", "C++")


def test_case_and_spacing_are_folded_but_words_are_not_split():
    assert says(" north   MACEDONIA", "North Macedonia")
    assert mentions("The capital is North  Macedonia.", "north macedonia")
    assert not mentions("It is in Macedonia", "North Macedonia")
    assert not mentions("Skopje is in Northmacedonia", "North Macedonia")
    assert not says(" It is Paris", "Paris")  # a completion must start with the object


@pytest.mark.parametrize("target", ["", "   ", "\u200b", "…", "€", "\U0001F1EB\U0001F1F7", "?!"])
def test_an_object_with_no_letter_or_digit_is_never_said(target):
    for text in ("", " ", " anything at all", f" {target}", target):
        assert not says(text, target)
        assert not mentions(text, target)


def test_scripts_without_spaces_need_no_word_boundary():
    assert says("东京是日本的首都", "东京") and mentions("日本的首都是东京。", "东京")


def test_answer_span_points_at_the_whole_word_mention():
    text = "Parisville, not Paris."
    assert answer_span(text, "paris") == (16, 21)
    assert answer_span(text, "Lyon") is None


def test_a_subject_is_spelled_only_exactly_and_as_whole_words():
    from nse_engine.answers import spells

    assert spells("Yulin is a city in Guangxi.", "Yulin")
    assert spells("I know (Yulin).", "Yulin")
    assert not spells("Yukon is a territory.", "Yulin")  # the misspelling users saw
    assert not spells("Yulintown is a city.", "Yulin")
    assert not spells("yulin is a city.", "Yulin")  # "exactly": the case too
    assert not spells("anything", "…")


def test_a_number_is_said_whole_not_by_its_first_digits():
    assert not says(" 1,000 people", "1") and not says(" 3.5 million", "3")
    assert not mentions("It has 3.5 million people", "5") and not mentions("about 1,000", "000")
    assert says(" 1,000 people", "1,000") and says(" 3.5 million", "3.5") and says(" 3.5 million", "3.5 million")
    assert says(" 1, 2 and 3", "1") and says(" 1. Paris", "1") and mentions("It was 1999.", "1999")


def test_a_target_whose_lower_case_is_longer_is_still_said():
    # "İzmir".lower() is "i̇zmir" (six characters): matched against that, "İzmir" was never said
    assert says("İzmir is", "İzmir") and says(" izmir is", "İzmir") and says(" İZMİR", "izmir")
    assert mentions("The city is İzmir.", "İzmir") and not mentions("İzmirli", "İzmir")
    assert answer_span("It is İzmir, Turkey", "İzmir") == (6, 11)
