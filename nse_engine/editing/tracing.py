"""Reading hidden states and keys out of a forward pass, and re-running only the upper blocks.

Everything here is compute-only: the model's weights are the same before and after each call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nse_engine.model.architecture import EditPoints
from nse_engine.model.hooks import StopForward, removing_hooks, run_until_stopped


def _block_hidden(output: object) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output  # type: ignore[index]


def _select_rows(value: object, rows: torch.Tensor, batch: int) -> object:
    """`value` restricted to the sequences `rows` (indices or a bool mask) where it has a batch
    dimension: tensors of two or more dimensions whose first is the batch; broadcast ones keep
    their size-1 batch, and tuples are searched."""
    if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[0] == batch:
        return value[rows]
    if isinstance(value, tuple):
        return tuple(_select_rows(v, rows, batch) for v in value)
    return value


def _select_call(call: tuple[tuple, dict], rows: torch.Tensor, batch: int) -> tuple[tuple, dict]:
    """A recorded block call's (args, kwargs), restricted to the sequences `rows`."""
    args, kwargs = call
    return _select_rows(args, rows, batch), {k: _select_rows(v, rows, batch) for k, v in kwargs.items()}


@dataclass(frozen=True)
class Reads:
    """Sequences, and the n places in them that keys or hidden states are read at: read i is
    position cols[i] of sequence rows[i]."""

    input_ids: torch.Tensor  # (batch, seq)
    attention_mask: torch.Tensor  # (batch, seq)
    rows: torch.Tensor  # (n,) which sequence each read comes from
    cols: torch.Tensor  # (n,) at which position

    def forward(self, model: nn.Module) -> None:
        """The model's blocks over the sequences, until a hook stops them."""
        run_until_stopped(lambda: model.base_model(input_ids=self.input_ids, attention_mask=self.attention_mask,
                                                   use_cache=False))


@torch.no_grad()
def trace_states(
    model: nn.Module, points: EditPoints, reads: Reads, key_layers: list[int], state_layer: int | None = None
) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
    """Keys (inputs of the MLP output projection) of `key_layers` and the block output of
    `state_layer`, at the `reads`; the forward stops after the last layer needed.

    Returns ({layer: (n, d_ff)}, (n, hidden) or None), in float32.
    """
    rows, cols = reads.rows, reads.cols
    keys: dict[int, torch.Tensor] = {}
    state: list[torch.Tensor] = []
    last = max(key_layers + ([state_layer] if state_layer is not None else []))
    handles = []

    def key_hook(layer: int):
        def hook(_module: nn.Module, args: tuple) -> None:
            k = args[0]  # (batch, seq, d_ff)
            keys[layer] = k[rows, cols].float()
            if layer == last and state_layer != last:
                raise StopForward

        return hook

    for layer in key_layers:
        handles.append(points.mlp_out(layer).register_forward_pre_hook(key_hook(layer)))
    if state_layer is not None:

        def state_hook(_module: nn.Module, _args: tuple, output: object) -> None:
            state.append(_block_hidden(output)[rows, cols].float())
            if state_layer == last:
                raise StopForward

        handles.append(points.blocks[state_layer].register_forward_hook(state_hook))
    with removing_hooks(handles):
        reads.forward(model)
    return keys, (state[0] if state else None)


class SuffixReplay:
    """The blocks above one layer, replayable on a modified hidden state at positions ≥ `split`.

    Rows are laid out so that position `split` is each row's subject token (left padding with
    explicit position ids). Nothing before the subject depends on the delta added there, so
    positions < `split` run once through every block and are kept as a key/value cache; the
    positions from `split` on run once through the blocks up to `layer` (giving h_L), and then
    `run(h)` feeds a new hidden state through the higher blocks only, attending to that cache.
    The exact arguments each higher block received are recorded and replayed, so nothing here
    is architecture-specific. Where the block's MLP output reaches the residual through a norm
    (Gemma 2/3), `value` keeps that output from the subject token on: a target there must be
    reachable through the norm (target_state.py).
    """

    def __init__(
        self,
        model: nn.Module,
        points: EditPoints,
        layer: int,
        input_ids: torch.Tensor,  # (batch, seq)
        attention_mask: torch.Tensor,  # (batch, seq)
        position_ids: torch.Tensor,  # (batch, seq)
        split: int,
    ) -> None:
        base = model.base_model
        self.calls: list[tuple[nn.Module, tuple, dict]] = []
        captured: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        with torch.no_grad():
            prefix = base(
                input_ids=input_ids[:, :split], attention_mask=attention_mask[:, :split],
                position_ids=position_ids[:, :split], use_cache=True,
            )
            self.cache = prefix.cache
            self.upper = range(layer + 1, points.n_layers)
            self.prefix_kv = {i: (self.cache.layers[i].keys, self.cache.layers[i].values) for i in self.upper}

            def record_output(_module: nn.Module, _args: tuple, output: object) -> None:
                captured.append(_block_hidden(output).detach())

            def record_call(module: nn.Module, args: tuple, kwargs: dict) -> None:
                self.calls.append((module, tuple(args[1:]), dict(kwargs)))

            def record_value(_module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
                values.append(output.detach())

            handles = [points.blocks[layer].register_forward_hook(record_output)]
            if points.mlp_output_norm(layer) is not None:
                handles.append(points.mlp_out(layer).register_forward_hook(record_value))
            for i in self.upper:
                handles.append(points.blocks[i].register_forward_pre_hook(record_call, with_kwargs=True))
            with removing_hooks(handles):
                base(
                    input_ids=input_ids[:, split:], attention_mask=attention_mask,
                    position_ids=position_ids[:, split:], cache=self.cache, use_cache=True,
                )
        self.hidden = captured[0]  # (batch, seq - split, hidden): h_L from the subject token on
        self.value = values[0] if values else None  # (batch, seq - split, hidden): the MLP output, before the norm

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Drop the rows where `rows` (bool, (batch,)) is False: from h_L, the prefix cache and
        every recorded block argument that has a batch dimension."""
        batch = len(rows)
        self.hidden = self.hidden[rows]
        if self.value is not None:
            self.value = self.value[rows]
        self.prefix_kv = {i: (keys[rows], values[rows]) for i, (keys, values) in self.prefix_kv.items()}
        self.calls = [(block, *_select_call((args, kwargs), rows, batch)) for block, args, kwargs in self.calls]

    def run(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden state after the last block (before the final norm) at positions ≥ split."""
        for i, (keys, values) in self.prefix_kv.items():
            self.cache.layers[i].keys, self.cache.layers[i].values = keys, values
        for block, args, kwargs in self.calls:
            hidden = _block_hidden(block(hidden, *args, **kwargs))
        return hidden


class LayerByLayerTrace:
    """Keys of consecutive edited layers while they are updated one after another.

    An editing pass needs, for each edited layer in turn, its keys and the state at the last
    edited layer with every lower edited layer already updated. A block's input depends only on
    the blocks below it, so one forward pass records each block's input and call arguments, and
    after layer l−1 changes only blocks l−1.. need to run again (not the embeddings and the blocks
    below the first edited layer, nor the edited blocks below l−1).
    """

    def __init__(
        self,
        model: nn.Module,
        points: EditPoints,
        reads: Reads,
        layers: list[int],  # the edited layers, ascending
        state_layer: int,
        state_reads: torch.Tensor,  # (m,) which of the reads the state is wanted at
    ) -> None:
        rows, cols = reads.rows, reads.cols
        self.points, self.rows, self.cols = points, rows, cols
        self.layers, self.state_layer = layers, state_layer
        self.inputs: dict[int, torch.Tensor] = {}
        self.calls: dict[int, tuple[tuple, dict]] = {}
        self.state_sequences = rows[state_reads]  # (m,)
        self.state_cols = cols[state_reads]  # (m,)
        self.state_calls: dict[int, tuple[tuple, dict]] = {}

        def record(index: int):
            def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
                self.inputs[index] = args[0]
                self.calls[index] = (tuple(args[1:]), dict(kwargs))
                if index == state_layer:
                    raise StopForward
            return hook

        handles = [points.blocks[i].register_forward_pre_hook(record(i), with_kwargs=True)
                   for i in range(layers[0], state_layer + 1)]
        with removing_hooks(handles), torch.no_grad():
            reads.forward(model)
        # Blocks above the first edited layer also run on the state's sequences alone.
        for index in range(layers[0] + 1, state_layer + 1):
            self.state_calls[index] = _select_call(self.calls[index], self.state_sequences, reads.input_ids.shape[0])

    @torch.no_grad()
    def keys_and_state(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys of `layer` (n, d_ff) and the block output of `state_layer` (n, hidden), in
        float32, with the weights as they are now; call for the edited layers in order."""
        position = self.layers.index(layer)
        start = self.layers[position - 1] if position > 0 else layer
        keys: list[torch.Tensor] = []

        def key_hook(_module: nn.Module, args: tuple) -> None:
            keys.append(args[0][self.rows, self.cols].float())

        hidden = self.inputs[start]  # (batch, seq, hidden)
        with removing_hooks([self.points.mlp_out(layer).register_forward_pre_hook(key_hook)]):
            for index in range(start, layer + 1):
                if index > start:
                    self.inputs[index] = hidden
                args, kwargs = self.calls[index]
                hidden = _block_hidden(self.points.blocks[index](hidden, *args, **kwargs))
        # Above `layer` only the sequences whose state is read are needed.
        hidden = hidden[self.state_sequences]  # (m, seq, hidden)
        for index in range(layer + 1, self.state_layer + 1):
            args, kwargs = self.state_calls[index]
            hidden = _block_hidden(self.points.blocks[index](hidden, *args, **kwargs))
        reads = torch.arange(len(self.state_sequences), device=hidden.device)
        return keys[0], hidden[reads, self.state_cols].float()
