"""Per-fact scores follow from the scorer's numbers; aggregates are means; results serialise."""

import json
import math

import pytest

from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.errors import Cancelled
from nse_engine.evaluation import evaluate, says, score_targets
from nse_engine.model.generation import greedy_continuations
from nse_engine.progress import JobControl

PROMPT = "The capital of {} is"
CANDIDATES = ["Paris", "Berlin", "Rome", "Madrid", "Tokyo", "Canberra", "London", "China"]


def ranked(loaded, prompt: str) -> list[str]:
    """CANDIDATES ordered from the answer the model prefers most to least, by mean log-prob."""
    scores = score_targets(loaded.model, loaded.tokenizer, [(prompt, c) for c in CANDIDATES])
    return [c for _, c in sorted(zip(scores, CANDIDATES), key=lambda x: -x[0].mean_logprob)]


def test_efficacy_generalisation_specificity_follow_preferences(tiny_llama):
    text, para1, para2 = PROMPT.format("France"), "France's capital is", "The capital city of France is"
    best, *_, worst = ranked(tiny_llama, text)
    neighbour = "The capital of Italy is"
    n_ranked = ranked(tiny_llama, neighbour)
    request = EditRequest(
        "France", PROMPT, target_new=best, target_true=worst, paraphrases=(para1, para2),
        neighborhood=(NeighborhoodCheck(neighbour, n_ranked[0]), NeighborhoodCheck(neighbour, n_ranked[-1])),
    )
    summary = evaluate(tiny_llama, [request], generation=False)
    fact = summary.facts[0]
    assert fact.efficacy is True
    # flipping new and true flips efficacy
    flipped = evaluate(tiny_llama, [EditRequest("France", PROMPT, worst, best)], generation=False).facts[0]
    assert flipped.efficacy is False
    expected_general = sum(ranked(tiny_llama, p).index(best) < ranked(tiny_llama, p).index(worst) for p in (para1, para2)) / 2
    assert fact.generalization == expected_general
    # the neighbour's top answer beats target_new only if target_new is not the neighbour's top answer itself
    expected_spec = []
    for check in request.neighborhood:
        if check.target != best:
            expected_spec.append(n_ranked.index(check.target) < n_ranked.index(best))
    assert fact.specificity == pytest.approx(sum(expected_spec) / len(expected_spec))
    assert fact.prob_new > fact.prob_true
    assert summary.efficacy == 1.0 and summary.n_facts == 1


def test_specificity_unedited_leaves_out_neighbours_that_were_edited_themselves(tiny_llama):
    best, *_, worst = ranked(tiny_llama, PROMPT.format("France"))
    kept, edited = "The capital of Italy is", "The capital of Spain is"
    kept_ranked, edited_ranked = ranked(tiny_llama, kept), ranked(tiny_llama, edited)
    request = EditRequest(
        "France", PROMPT, target_new=best, target_true=worst,
        neighborhood=(NeighborhoodCheck(kept, next(c for c in kept_ranked if c != best)),
                      NeighborhoodCheck(edited, next(c for c in edited_ranked if c != best))),
    )
    kept_holds = kept_ranked.index(request.neighborhood[0].target) < kept_ranked.index(best)
    edited_holds = edited_ranked.index(request.neighborhood[1].target) < edited_ranked.index(best)
    fact = evaluate(tiny_llama, [request], generation=False, edited_prompts={edited}).facts[0]
    assert fact.specificity == pytest.approx((kept_holds + edited_holds) / 2)
    assert fact.specificity_unedited == float(kept_holds)
    plain = evaluate(tiny_llama, [request], generation=False).facts[0]
    assert plain.specificity_unedited == plain.specificity


def test_probabilities_are_exp_mean_logprob(tiny_llama):
    text = PROMPT.format("Spain")
    new, true = score_targets(tiny_llama.model, tiny_llama.tokenizer, [(text, "Madrid"), (text, "Tokyo")])
    fact = evaluate(tiny_llama, [EditRequest("Spain", PROMPT, "Madrid", "Tokyo")], generation=False).facts[0]
    assert fact.prob_new == pytest.approx(math.exp(new.mean_logprob))
    assert fact.prob_true == pytest.approx(math.exp(true.mean_logprob))
    assert fact.top1 == pytest.approx(new.top1)


def test_without_target_true_efficacy_needs_every_token_argmax(tiny_llama):
    text = PROMPT.format("Japan")
    written = greedy_continuations(tiny_llama.model, tiny_llama.tokenizer, [text], 3)[0]
    own = EditRequest("Japan", PROMPT, written.strip())  # what the model writes anyway
    other = EditRequest("Japan", PROMPT, "Canberra")
    own_score, other_score = score_targets(
        tiny_llama.model, tiny_llama.tokenizer, [(text, own.target_new), (text, "Canberra")]
    )
    facts = evaluate(tiny_llama, [own, other]).facts
    assert facts[0].efficacy is (own_score.top1 == 1.0)
    assert facts[1].efficacy is (other_score.top1 == 1.0)
    assert facts[0].prob_true is None


def test_generation_check_reads_what_the_model_writes(tiny_llama):
    # Chile: the tiny model writes a first word with letters (an object of symbols only is never said)
    text = PROMPT.format("Chile")
    written = greedy_continuations(tiny_llama.model, tiny_llama.tokenizer, [text], 8)[0]
    first_word = written.split()[0] if written.split() else written
    facts = evaluate(tiny_llama, [EditRequest("Chile", PROMPT, first_word), EditRequest("Chile", PROMPT, "Zanzibar Q")]).facts
    assert facts[0].generated.startswith(written[: len(facts[0].generated)])
    assert facts[0].generation is True
    assert facts[1].generation is False


def test_says_normalises_case_space_and_punctuation():
    assert says(" Paris, the city of light", "Paris")
    assert says('\n"paris" is', "Paris")
    assert says(" North  Macedonia.", "North Macedonia")
    assert not says(" The city of Paris", "Paris")
    assert not says(" Par", "Paris")


def test_neighbour_with_target_new_as_its_answer_is_not_counted(tiny_llama):
    request = EditRequest(
        "France", PROMPT, "Paris", "Rome",
        neighborhood=(NeighborhoodCheck("The capital of Spain is", "paris"),),
    )
    assert evaluate(tiny_llama, [request], generation=False).facts[0].specificity is None


def test_aggregates_are_means_and_serialise(tiny_llama):
    requests = [
        EditRequest(c, PROMPT, t, "Rome", paraphrases=(f"{c}'s capital is",),
                    neighborhood=(NeighborhoodCheck("The capital of Italy is", "Rome"),), fact_id=i)
        for i, (c, t) in enumerate([("France", "Paris"), ("Germany", "Berlin"), ("Spain", "Madrid")])
    ]
    summary = evaluate(tiny_llama, requests, fluency=True)
    for name in ("efficacy", "generalization", "specificity", "top1", "generation"):
        values = [float(getattr(f, name)) for f in summary.facts]
        assert getattr(summary, name) == pytest.approx(sum(values) / len(values))
    assert summary.fluency is not None and summary.fluency >= 0
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["facts"][2]["fact_id"] == 2
    assert "facts" not in summary.to_dict(with_facts=False)


def test_evaluation_is_deterministic_and_reports_progress(tiny_llama):
    requests = [EditRequest(c, PROMPT, "Tokyo", "Paris", paraphrases=("The capital city of it is",)) for c in ("France", "Peru")]
    records = []
    first = evaluate(tiny_llama, requests, control=JobControl(records.append))
    second = evaluate(tiny_llama, requests)
    assert first.to_dict()["facts"] == second.to_dict()["facts"]
    assert {r.phase for r in records} == {"evaluation"}
    assert records[-1].done == records[-1].total > 0


def test_cancel_stops_evaluation(tiny_llama):
    control = JobControl()
    control.cancel()
    with pytest.raises(Cancelled):
        evaluate(tiny_llama, [EditRequest("France", PROMPT, "Paris", "Rome")], control=control)
