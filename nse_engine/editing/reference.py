"""A plain per-fact target-state loop (the authors' way): full forward passes, one fact at a time.

Kept as the yardstick for the batched implementation: tests check both find the same z, and
`nse bench --per-fact-baseline K` times both in one run.
"""

from __future__ import annotations

import torch
from torch import nn

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.prompts import chat_conversation, repeated_subject, tokenize_at_subject
from nse_engine.facts import EditRequest
from nse_engine.editing.target_state import EARLY_STOP_NLL
from nse_engine.model.architecture import EditPoints
from nse_engine.model.tokens import encode_target, right_pad


def per_fact_target_state(
    model: nn.Module,
    tokenizer,
    points: EditPoints,
    request: EditRequest,
    hp: NseHyperParams,
    prefixes: list[str],
    stop_nll: float = EARLY_STOP_NLL,
) -> torch.Tensor:
    """z (hidden,) for one request, with the whole model run at every Adam step."""
    layer = hp.layers[-1]
    target = encode_target(tokenizer, request.target_new)
    rows, lookups, prompt_lens = [], [], []
    for prefix in ["", *prefixes]:
        ids, last = tokenize_at_subject(tokenizer, prefix, request.prompt, request.subject)
        rows.append(ids + target[:-1])
        lookups.append([last])
        prompt_lens.append(len(ids))
    turn = chat_conversation(tokenizer, request) if hp.target.chat_rows else None
    chat_spelled: list[int] = []  # the chat row's reply subject after its first token (chat_subject_weight)
    if turn is not None and turn.subject_ends:
        rows.append(turn.ids + target[:-1])
        lookups.append(turn.subject_ends)
        prompt_lens.append(len(turn.ids))
        if hp.target.chat_subject_weight > 0 and len(turn.subject_ends) > 1:
            chat_spelled = turn.reply_subject[1:]
    kl_ids, kl_last = tokenize_at_subject(tokenizer, "", "{} is a", request.subject)
    rows.append(kl_ids)
    lookups.append([kl_last])
    found = repeated_subject(tokenizer, request.subject) if hp.target.subject_repeat_weight > 0 else None
    spelled: list[int] = []
    if found is not None and len(found[2]) > 1:
        repeat_ids, repeat_last, mention = found
        rows.append(repeat_ids)
        lookups.append([repeat_last])
        spelled = mention[1:]
    device = points.lm_head.weight.device
    ids, mask = right_pad(rows, tokenizer.pad_token_id)
    ids, mask = ids.to(device), mask.to(device)
    delta = torch.zeros(points.hidden_size, device=device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=hp.target.v_lr)
    state: dict[str, torch.Tensor] = {}

    def add_delta(_module: nn.Module, _args: tuple, output: object) -> object:
        h = output[0] if isinstance(output, tuple) else output
        if "h_init" not in state:
            state["h_init"] = h[0, lookups[0][0]].detach().clone()
        h = h.clone()
        for r, cols in enumerate(lookups):
            for col in cols:
                h[r, col] = h[r, col] + delta.to(h.dtype)
        return (h, *output[1:]) if isinstance(output, tuple) else h

    handle = points.blocks[layer].register_forward_hook(add_delta)
    kl_init = None
    try:
        for it in range(hp.target.v_num_grad_steps):
            logits = model(input_ids=ids, attention_mask=mask).logits.float()  # (rows, seq, vocab)
            logp = torch.log_softmax(logits, dim=-1)
            nll = 0.0
            n_rewrite = len(prompt_lens)
            for r in range(n_rewrite):
                cols = torch.arange(prompt_lens[r] - 1, prompt_lens[r] - 1 + len(target), device=device)
                nll = nll - logp[r, cols, torch.tensor(target, device=device)].sum() / len(target)
            nll = nll / n_rewrite
            kl_logp = logp[n_rewrite, kl_last]
            if kl_init is None:
                kl_init = kl_logp.detach()
            kl = hp.target.kl_factor * (kl_logp.exp() * (kl_logp - kl_init)).sum()
            loss = nll + kl + hp.target.v_weight_decay * delta.norm() / state["h_init"].norm() ** 2
            if chat_spelled:
                positions = torch.tensor(chat_spelled, device=device)
                chat_row = n_rewrite - 1
                written = logp[chat_row, positions - 1, ids[chat_row, positions]]  # (k,)
                loss = loss - hp.target.chat_subject_weight * written.mean()
            if spelled:
                positions = torch.tensor(spelled, device=device)
                repeat = logp[n_rewrite + 1, positions - 1, ids[n_rewrite + 1, positions]]  # (k,)
                loss = loss - hp.target.subject_repeat_weight * repeat.mean()
            if float(nll.detach()) < stop_nll or it == hp.target.v_num_grad_steps - 1:
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                max_norm = hp.target.clamp_norm_factor * state["h_init"].norm()
                if delta.norm() > max_norm:
                    delta.mul_(max_norm / delta.norm())
    finally:
        handle.remove()
    return (state["h_init"] + delta.detach()).float().cpu()
