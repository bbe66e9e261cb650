"""Keys and hidden states of facts, read out of the model as it is now (compute-only).

A fact is read at its subject's last token, in its bare prompt and (for keys) in each
context-prefixed copy and, with chat rows, at the subject in the fact's chat turn (question and
reply: the contexts its target state is computed in); a key is half the bare prompt's and half
the mean over the other contexts, as in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nse_engine.chat import CHAT_ANSWER_TOKENS, fact_question, is_chat_model, replies
from nse_engine.editing.prompts import chat_conversation, tokenize_at_subject
from nse_engine.editing.tracing import LayerByLayerTrace, Reads, trace_states
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import EditPoints
from nse_engine.model.loading import LoadedModel
from nse_engine.model.generation import GENERATION_SLACK, greedy_continuations
from nse_engine.model.tokens import encode_target, right_pad


# Reads of a fact's chat turn: the subject's last token where the question writes it first and
# where the reply writes it last (the same token twice when only the reply names it).
CHAT_READS = 2


@dataclass
class _Encoded:
    reads: Reads  # right-padded sequences up to each one's last subject token, read at the subject tokens
    reads_per_fact: int  # the bare prompt, then one per prefix, then the chat turn's


class FactReader:
    """Reads facts' keys at the edited layers and their state at the last one."""

    def __init__(self, loaded: LoadedModel, points: EditPoints, layers: tuple[int, ...], solve_device: torch.device) -> None:
        self.loaded = loaded
        self.points = points
        self.layers = layers
        self.solve_device = solve_device

    def _encode(self, requests: list[EditRequest], prefixes: list[str], chat: bool = False) -> _Encoded:
        """Token ids for the bare prompt and the prefixed copies of each request (and with `chat`,
        for a chat model, its chat turn), each up to its last subject token (nothing after it can
        change keys or states there in a causal model)."""
        tokenizer = self.loaded.tokenizer
        conversations = [chat_conversation(tokenizer, req) if chat else None for req in requests]
        chat = chat and all(c is not None and c.subject_ends for c in conversations)
        seqs: list[list[int]] = []
        read_rows, read_cols = [], []
        for req, conversation in zip(requests, conversations):
            for prefix in ["", *prefixes]:
                ids, last = tokenize_at_subject(tokenizer, prefix, req.prompt, req.subject)
                read_rows.append(len(seqs))
                read_cols.append(last)
                seqs.append(ids[: last + 1])
            if chat:
                ends = conversation.subject_ends
                read_rows += [len(seqs)] * CHAT_READS
                read_cols += [ends[0], ends[-1]]
                seqs.append(conversation.ids[: ends[-1] + 1])
        ids, mask = right_pad(seqs, tokenizer.pad_token_id)
        device = self.loaded.device
        reads = Reads(ids.to(device), mask.to(device), torch.tensor(read_rows, device=device),
                      torch.tensor(read_cols, device=device))
        return _Encoded(reads, 1 + len(prefixes) + (CHAT_READS if chat else 0))

    def hidden_at_last_layer(self, requests: list[EditRequest]) -> torch.Tensor:
        """Current block output at the last edited layer, at each bare prompt's subject token."""
        enc = self._encode(requests, [])
        _, hidden = trace_states(self.loaded.model, self.points, enc.reads, [], self.layers[-1])
        return hidden.to(self.solve_device, torch.float64)  # (n, hidden)

    def average_keys(self, requests: list[EditRequest], layers: list[int], prefixes: list[str],
                     chat: bool = False) -> dict[int, torch.Tensor]:
        """Each request's key at each of `layers`, (n, d_ff) float32 on the CPU; with `chat`, read
        also in its chat turn (where its target state puts the delta)."""
        enc = self._encode(requests, prefixes, chat)
        keys, _ = trace_states(self.loaded.model, self.points, enc.reads, layers)
        return {l: fact_keys(keys[l], enc.reads_per_fact, self.solve_device).float().cpu() for l in layers}

    def mlp_output_at_last_layer(self, requests: list[EditRequest]) -> torch.Tensor:
        """v0: the last edited layer's MLP output at each bare prompt's subject token, (n, hidden)
        float32 on the CPU (the projection applied to the key, so no extra hook is needed)."""
        layer = self.layers[-1]
        keys = self.average_keys(requests, [layer], [])[layer]  # (n, d_ff)
        projection = self.points.mlp_out(layer)
        weight = self.points.weight(layer)
        with torch.no_grad():
            return projection(keys.to(weight.device, weight.dtype)).float().cpu()

    def continuations(self, requests: list[EditRequest]) -> list[str]:
        """What the model writes now after each bare prompt, greedily, long enough for target_new."""
        tokenizer = self.loaded.tokenizer
        limits = [len(encode_target(tokenizer, r.target_new)) + GENERATION_SLACK for r in requests]
        return greedy_continuations(self.loaded.model, tokenizer, [r.text for r in requests], limits)

    @property
    def has_chat(self) -> bool:
        """Does the model have a chat template (users also read its facts as chat replies)?"""
        return is_chat_model(self.loaded)

    def chat_replies(self, requests: list[EditRequest]) -> list[str] | None:
        """What the model replies now to each fact's chat question (its first question, else the one
        built from its prompt) through its chat template, greedily, as the Chat screen's quick
        question asks it (None: a base model, which has no chat to check)."""
        if not self.has_chat:
            return None
        return replies(self.loaded, [fact_question(r, self.loaded) for r in requests], CHAT_ANSWER_TOKENS)

    def layer_trace(self, requests: list[EditRequest], prefixes: list[str], chat: bool = False) -> LayeredReads:
        """One forward pass over the bare and prefixed prompts of `requests` (and with `chat` their
        chat turns), kept so that each edited layer's keys can be read after the layers below it
        were updated."""
        enc = self._encode(requests, prefixes, chat)
        bare = torch.arange(len(requests), device=enc.reads.rows.device) * enc.reads_per_fact  # reads without a prefix
        trace = LayerByLayerTrace(self.loaded.model, self.points, enc.reads, list(self.layers), self.layers[-1], bare)
        return LayeredReads(self, trace, enc.reads_per_fact)


def fact_keys(keys: torch.Tensor, rows_per_fact: int, device: torch.device) -> torch.Tensor:
    """Per request, from its reads' keys (n · T, d_ff): half the bare prompt's key, half the mean
    over its other contexts; (n, d_ff) float64 on `device`."""
    per_request = keys.to(device, torch.float64).view(-1, rows_per_fact, keys.shape[-1])  # (n, T, d_ff)
    if rows_per_fact == 1:
        return per_request[:, 0]
    return 0.5 * per_request[:, 0] + 0.5 * per_request[:, 1:].mean(1)  # (n, d_ff)


@dataclass
class LayeredReads:
    """An editing pass's view of its facts while the edited layers change one after another."""

    reader: FactReader
    trace: LayerByLayerTrace
    rows_per_fact: int

    def keys_and_hidden(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keys at `layer` averaged over contexts (n, d_ff), current hidden states at the last
        edited layer on the bare prompts (n, hidden), float64, and the bare prompts' own keys at
        `layer` (n, d_ff) as the model computed them, with every lower edited layer as it is now;
        call for the edited layers in order."""
        keys, hidden = self.trace.keys_and_state(layer)
        device = self.reader.solve_device
        bare = keys.view(-1, self.rows_per_fact, keys.shape[-1])[:, 0]  # (n, d_ff)
        return fact_keys(keys, self.rows_per_fact, device), hidden.to(device, torch.float64), bare
