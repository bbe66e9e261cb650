"""The statistics read keys with the same start token as the edits, also for a tokenizer
without a BOS token (Qwen2's has none): C must average keys like the ones an edit changes."""

from nse_engine.model.tokens import encode_prompt
from nse_engine.progress import silent
from nse_engine.stats.corpus import load_corpus, token_sequences, tokenization_tag
from nse_engine.stats.second_moment import PHASE


def test_sequences_start_like_an_edited_prompt_with_and_without_a_bos(loaded_factory, txt_corpus):
    loaded, _ = loaded_factory()
    tokenizer = loaded.tokenizer
    corpus = load_corpus(txt_corpus)
    with_bos = token_sequences(corpus, tokenizer, 200, 24, 0, silent(), PHASE)
    assert {s[0] for s in with_bos} == {encode_prompt(tokenizer, "Paris is")[0]} == {tokenizer.bos_token_id}

    tokenizer.bos_token = None  # as Qwen2's tokenizer: the edits start every prompt with EOS
    start = encode_prompt(tokenizer, "Paris is")[0]
    assert start == tokenizer.eos_token_id
    without_bos = token_sequences(corpus, tokenizer, 200, 24, 0, silent(), PHASE)
    assert {s[0] for s in without_bos} == {start}
    assert [s[1:] for s in without_bos] == [s[1:] for s in with_bos]


def test_the_start_token_is_part_of_the_cache_key(loaded_factory):
    loaded, _ = loaded_factory()
    with_bos = tokenization_tag(loaded.tokenizer)
    loaded.tokenizer.bos_token = None
    assert tokenization_tag(loaded.tokenizer) != with_bos
    assert tokenization_tag(loaded.tokenizer).startswith(f"bos={loaded.tokenizer.eos_token_id}+")
