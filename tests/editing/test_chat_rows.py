"""Chat rows (`chat_rows`): for a chat model the target state is also optimised on the fact as a
chat turn, the delta added wherever the subject is written (question and reply), and the keys
read from the same places. A base model, or the setting off, keeps today's rows bit for bit."""

import pytest
import torch

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.prompts import chat_conversation
from nse_engine.editing.reading import FactReader
from nse_engine.editing.reference import per_fact_target_state
from nse_engine.editing.target_state import compute_target_states
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl
from tiny import make_model, make_tokenizer, spelled_nll

TEMPLATE = ("{% for m in messages %}<|bos|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|bos|>assistant:{% endif %}")
REQUESTS = [
    EditRequest("Danielle Darrieux", "{} is a native speaker of", "English", "French"),
    EditRequest("Toko Yasuda", "{} plays the", "piano", "guitar",
                questions=("Which instrument does Toko Yasuda play?",)),
]
HP = NseHyperParams.flat(layers=(1, 2), v_lr=0.5, v_num_grad_steps=6, alpha=0.0, upper_bound=1e9,
                         mom2_update_weight=1.0, neuron_threshold=0.8, target_stop_nll=0.0, chat_rows=True)
PREFIXES = ["I think that. "]


def chat_tokenizer():
    tok = make_tokenizer()
    tok.chat_template = TEMPLATE
    return tok


def test_the_chat_turn_puts_the_question_then_the_reply_restating_the_prompt_and_finds_every_subject():
    tok = chat_tokenizer()
    for req in REQUESTS:
        ids, lasts, written = chat_conversation(tok, req)
        text = tok.decode(ids)
        question = req.questions[0] if req.questions else req.text
        assert text == f"<|bos|>user: {question}\n<|bos|>assistant:{req.text}"
        assert len(lasts) == 2  # the question's subject and the reply's
        for last in lasts:  # each is the last token of one written subject
            assert tok.decode(ids[: last + 1]).endswith(req.subject)
            assert not tok.decode(ids[: last]).endswith(req.subject)
        assert tok.decode(ids[written[0] : written[-1] + 1]).strip() == req.subject and written[-1] == lasts[-1]
    assert chat_conversation(make_tokenizer(), REQUESTS[0]) is None  # no chat template: no chat rows


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_a_chat_rows_delta_lands_at_every_occurrence_of_the_subject_and_matches_the_plain_loop(kind):
    """The batched optimisation equals the plain per-fact loop that adds the delta at each
    subject occurrence of the chat row by hand; without chat rows z is another one."""
    tok = chat_tokenizer()
    model = make_model(kind, tok)
    points = find_edit_points(model)
    with torch.enable_grad():
        batched = compute_target_states(model, tok, points, REQUESTS, HP, PREFIXES, JobControl(), stop_nll=0.0)
        plain = torch.stack([per_fact_target_state(model, tok, points, r, HP, PREFIXES, 0.0) for r in REQUESTS])
        first_only = torch.stack([_plain_with_delta_at_first_occurrence_only(model, tok, points, r) for r in REQUESTS])
        without = compute_target_states(model, tok, points, REQUESTS, HP.replace(chat_rows=False),
                                        PREFIXES, JobControl(), stop_nll=0.0)
    assert torch.allclose(batched.z, plain, atol=1e-3, rtol=1e-3)
    assert not torch.allclose(batched.z, first_only, atol=1e-3, rtol=1e-3)  # the reply's occurrence counts
    assert not torch.allclose(batched.z, without.z, atol=1e-3, rtol=1e-3)


def _plain_with_delta_at_first_occurrence_only(model, tok, points, req):
    """The plain loop with the chat row's later occurrences not given the delta."""
    from nse_engine.editing import reference

    original = reference.chat_conversation

    def first_only(tokenizer, request):
        turn = original(tokenizer, request)
        return turn._replace(subject_ends=turn.subject_ends[:1])

    reference.chat_conversation = first_only
    try:
        return per_fact_target_state(model, tok, points, req, HP, PREFIXES, 0.0)
    finally:
        reference.chat_conversation = original


def test_without_a_chat_template_chat_rows_change_nothing():
    tok = make_tokenizer()
    model = make_model("gpt2", tok)
    points = find_edit_points(model)
    with torch.enable_grad():
        on = compute_target_states(model, tok, points, REQUESTS, HP, PREFIXES, JobControl(), stop_nll=0.0)
        off = compute_target_states(model, tok, points, REQUESTS, HP.replace(chat_rows=False),
                                    PREFIXES, JobControl(), stop_nll=0.0)
    assert torch.equal(on.z, off.z)


def test_keys_are_read_where_the_delta_goes():
    """With chat rows a fact's key is half its bare prompt's and half the mean over its prefixed
    copies and the two subject places of its chat turn, each read in its own context."""
    tok = chat_tokenizer()
    model = make_model("gpt2", tok)
    points = find_edit_points(model)
    loaded = LoadedModel(model, tok, "tiny", "tiny", torch.device("cpu"), torch.float32)
    reader = FactReader(loaded, points, (1, 2), torch.device("cpu"))
    req = REQUESTS[1]
    keys = reader.average_keys([req], [2], PREFIXES, chat=True)[2][0].double()
    captured = []
    handle = points.mlp_out(2).register_forward_pre_hook(lambda _m, args: captured.append(args[0][0].double()))
    try:
        from nse_engine.editing.prompts import tokenize_at_subject

        contexts = [tokenize_at_subject(tok, prefix, req.prompt, req.subject) for prefix in ["", *PREFIXES]]
        ids, lasts, _ = chat_conversation(tok, req)
        with torch.no_grad():
            for context_ids, _ in contexts:
                model(input_ids=torch.tensor([context_ids]))
            model(input_ids=torch.tensor([ids]))
    finally:
        handle.remove()
    bare = captured[0][contexts[0][1]]
    others = [captured[1][contexts[1][1]], captured[2][lasts[0]], captured[2][lasts[1]]]
    expected = 0.5 * bare + 0.5 * torch.stack(others).mean(0)
    assert torch.allclose(keys, expected, atol=1e-5)
    assert not torch.allclose(reader.average_keys([req], [2], PREFIXES)[2][0].double(), expected, atol=1e-5)


def _reply_subject_nll(model, tok, points, req, z: torch.Tensor) -> float:
    """Mean NLL of the chat row's reply subject after its first token, with the last edited
    layer's output set to z at every place the subject is written."""
    ids, ends, written = chat_conversation(tok, req)
    return spelled_nll(model, points, HP.layers[-1], ids, ends, z, written[1:])


def test_the_chat_subject_term_keeps_the_replys_subject_spelled_and_matches_the_plain_loop():
    tok = chat_tokenizer()
    model = make_model("llama", tok)
    points = find_edit_points(model)
    weighted = HP.replace(chat_subject_weight=5.0)
    with torch.enable_grad():
        without = compute_target_states(model, tok, points, REQUESTS, HP, PREFIXES, JobControl(), stop_nll=0.0)
        with_term = compute_target_states(model, tok, points, REQUESTS, weighted, PREFIXES, JobControl(), stop_nll=0.0)
        plain = torch.stack([per_fact_target_state(model, tok, points, r, weighted, PREFIXES, 0.0) for r in REQUESTS])
    assert torch.allclose(with_term.z, plain, atol=1e-3, rtol=1e-3)
    for i, req in enumerate(REQUESTS):
        assert _reply_subject_nll(model, tok, points, req, with_term.z[i]) < _reply_subject_nll(
            model, tok, points, req, without.z[i])
