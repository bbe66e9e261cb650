"""For a chat model the round also asks each fact's chat question through the chat template: a fact
holds only when its completion and its chat reply both say the new object, and one the chat reply
does not say gets the extra passes; the log keeps the reply, and the verdict names both texts."""

import dataclasses
from datetime import datetime, timedelta, timezone

from nse_engine.answers import mentions, says
from nse_engine.chat import CHAT_ANSWER_TOKENS, fact_question, prompt_question, replies
from nse_engine.editing.session import EditingSession
from nse_engine.editing.state_file import read_state
from nse_engine.facts import EditRequest
from nse_engine.model.loading import LoadedModel
from nse_engine.store import Project
from nse_engine.store.log_rows import held_count, written_texts
from tiny import CHAT_TEMPLATE, tiny_hparams, tiny_loaded

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def tiny_gpt2(chat: bool) -> LoadedModel:
    return tiny_loaded("gpt2", chat_template=CHAT_TEMPLATE if chat else None)


def questions_asked(monkeypatch) -> list[str]:
    """The chat questions the round asks from now on, in order, captured through the real replies()."""
    from nse_engine.editing import reading

    asked: list[str] = []

    def recording(loaded_model, questions, *args, **kwargs):
        asked.extend(questions)
        return replies(loaded_model, questions, *args, **kwargs)

    monkeypatch.setattr(reading, "replies", recording)
    return asked


def facts_it_completes(session: EditingSession) -> list[EditRequest]:
    """Facts whose new object is the word the model already writes after the prompt (the random
    tiny GPT-2 goes on " of of of" and " the the the"), so that the completion says it."""
    facts = [EditRequest("Danielle Darrieux", "{} is a native speaker of", "x", "French"),
             EditRequest("Toko Yasuda", "{} plays the", "x", "guitar")]
    written = session.reader.continuations(facts)
    return [dataclasses.replace(f, target_new=text.split()[0]) for f, text in zip(facts, written)]


def test_by_default_a_fact_said_only_in_its_completion_is_not_held_and_gets_no_chat_pass():
    loaded = tiny_gpt2(chat=True)
    session = EditingSession(loaded, tiny_hparams(verify_passes=2, max_iterations=1))
    result = session.apply_round(facts_it_completes(session))
    assert len(session.rounds[-1].updates) == len(session.layers)  # the round's pass only
    assert [(o.completion_held, o.chat_held, o.held, o.extra_passes) for o in result.outcomes] == [(True, False, False, 0)] * 2


def test_a_fact_said_in_its_completion_but_not_in_chat_is_not_held_and_gets_extra_passes(tmp_path):
    loaded = tiny_gpt2(chat=True)
    session = EditingSession(loaded, tiny_hparams(verify_passes=2, max_iterations=1, chat_passes=True))
    requests = facts_it_completes(session)
    result = session.apply_round(requests)
    assert len(session.rounds[-1].updates) == (1 + 2) * len(session.layers)  # the round's pass, then two for chat
    for outcome in result.outcomes:
        request = outcome.request
        asked = replies(loaded, [fact_question(request, loaded)], CHAT_ANSWER_TOKENS)[0]  # as the Chat screen asks
        assert outcome.chat_reply == asked and not mentions(asked, request.target_new)
        assert outcome.continuation == session.reader.continuations([request])[0]
        assert says(outcome.continuation, request.target_new)
        assert (outcome.completion_held, outcome.chat_held, outcome.held, outcome.extra_passes) == (True, False, False, 2)
    session.save_state(tmp_path / "state.safetensors")
    saved = read_state(tmp_path / "state.safetensors").rounds[0].outcomes
    assert [(o.chat_reply, o.completion_held, o.chat_held, o.held) for o in saved] == [
        (o.chat_reply, True, False, False) for o in result.outcomes]

    with Project.create(tmp_path / "project", "tiny", "fp") as project:
        ids = project.queue.queue_facts(requests)
        queued = {r.fact_id: r for r in project.queue.queued_facts()}
        outcomes = [dataclasses.replace(o, request=queued[i]) for i, o in zip(ids, result.outcomes)]
        project.history.commit_batch(outcomes, "NSE", {}, T0, T0 + timedelta(seconds=1), lambda p: p.write_bytes(b"s"))
    with Project.open(tmp_path / "project") as project:
        rows = project.queries.log_rows()
    assert str(held_count(rows)) == "held 0/2 (0 after extra passes) · completion 2/2 · chat 0/2"
    for row, outcome in zip(rows, result.outcomes):
        assert row.not_held and row.disagrees and row.chat_reply == outcome.chat_reply
        assert written_texts(row) == (f"completion: {' '.join(outcome.continuation.split())} · "
                                      f"chat: {' '.join(outcome.chat_reply.split())}")


def test_the_round_asks_a_facts_own_question_in_chat(monkeypatch):
    """A fact with questions is checked by its first one (what its user asks); one without, by the
    question built from its prompt. The questions asked are captured through the real function."""
    loaded = tiny_gpt2(chat=True)
    asked = questions_asked(monkeypatch)
    session = EditingSession(loaded, tiny_hparams(verify_passes=0, max_iterations=1))
    plain, own = facts_it_completes(session)
    own = dataclasses.replace(own, questions=("Which instrument does Toko Yasuda play?", "What does Toko Yasuda play?"))
    result = session.apply_round([plain, own])
    assert asked == [prompt_question(plain, loaded), "Which instrument does Toko Yasuda play?"]
    by_question = replies(loaded, asked, CHAT_ANSWER_TOKENS)
    assert [o.chat_reply for o in result.outcomes] == by_question  # the replies recorded answer those questions
    assert by_question[1] != replies(loaded, [prompt_question(own, loaded)], CHAT_ANSWER_TOKENS)[0]


def test_a_base_model_is_checked_by_its_completion_only():
    session = EditingSession(tiny_gpt2(chat=False), tiny_hparams(verify_passes=2, max_iterations=1))
    result = session.apply_round(facts_it_completes(session))
    assert len(session.rounds[-1].updates) == len(session.layers)  # nothing to retry
    for outcome in result.outcomes:
        assert (outcome.completion_held, outcome.chat_reply, outcome.chat_held, outcome.held, outcome.extra_passes) == (
            True, None, None, True, 0)


def test_a_chat_reply_about_another_or_misspelt_subject_does_not_hold():
    from nse_engine.editing.nse_round import WrittenCheck

    fact = EditRequest("Montevideo", "{} is a city in", "Bulgaria", "Uruguay")
    said = " Bulgaria, in the Balkans."  # the completion of the prompt

    def chat(reply: str) -> tuple[bool | None, bool]:
        check = WrittenCheck.of(fact, said, reply, 0)
        return check.chat_held, check.held

    assert chat("Montevideo is a city in Bulgaria.") == (True, True)
    assert chat("The capital of Bulgaria is Stara Boulina.") == (False, False)  # about another city
    assert chat("Montenegro is in Bulgaria.") == (False, False)  # the subject misspelt
    assert chat("Montevideo is a city in Uruguay.") == (False, False)


def test_without_chat_passes_each_chat_question_is_asked_once_after_the_extra_passes(monkeypatch):
    """The passes go by the completion, so asking in chat at every check would only cost time: the
    questions are asked once, after the last pass, and the verdict is from that reply."""
    loaded = tiny_gpt2(chat=True)
    asked = questions_asked(monkeypatch)
    session = EditingSession(loaded, tiny_hparams(verify_passes=2, max_iterations=1))
    facts = [EditRequest("Danielle Darrieux", "{} is a native speaker of", "Klingon", "French"),
             EditRequest("Toko Yasuda", "{} plays the", "theremin", "guitar")]
    result = session.apply_round(facts)
    assert any(o.extra_passes for o in result.outcomes)  # the completion missed: extra passes ran
    assert asked == [prompt_question(f, loaded) for f in facts]
    assert [o.chat_reply for o in result.outcomes] == replies(loaded, asked, CHAT_ANSWER_TOKENS)
