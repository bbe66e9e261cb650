"""NSE hyper-parameters: the paper's presets for its three models, and derived settings for others."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nse_engine.method_names import METHODS

if TYPE_CHECKING:  # the app reads the settings' scopes and must not import transformers
    from transformers import PreTrainedModel


# Who may change a setting, as `field(metadata={"scope": ...})` says (unmarked: ROUND). The round
# refuses another method or other layers (session.py); what a project prepares once is not read per
# round; provenance records where the values came from. The app's Advanced panel and `nse edit
# --set` offer only `editable_settings()`.
ROUND = "round"  # each batch may use its own value
PROJECT = "project"  # fixed when the project is created; a round refuses another value
PREPARED = "prepared"  # used once, when the project prepares editing (context prefixes, statistics)
PROVENANCE = "provenance"  # where the values came from, not a setting
_PROJECT = {"scope": PROJECT}
_PREPARED = {"scope": PREPARED}
_PROVENANCE = {"scope": PROVENANCE}


@dataclass
class NseHyperParams:
    """Every knob of one NSE edit round; `editable_settings()` names those a batch may change."""

    layers: tuple[int, ...] = field(metadata=_PROJECT)  # consecutive blocks whose MLP output projections are edited
    v_lr: float  # Adam learning rate of the target-state delta
    v_num_grad_steps: int  # Adam steps per target state
    alpha: float  # a fact within this distance of its target state needs no further pass
    upper_bound: float  # a fact farther than this from its target state is not edited (outlier)
    mom2_update_weight: float  # weight of the general-text key covariance C in the solve
    neuron_threshold: float  # share of summed |key| covered by the updated neurons (1.0 = all)
    earlier_edits_weight: float = 1.0  # weight of Kp (earlier edits' keys) in the solve; paper: 1
    layer_share_ratio: float = 1.0  # each edited layer takes this × the residual share of the one below; paper: 1
    clamp_norm_factor: float = 0.75  # ‖delta‖ ≤ factor · ‖h‖
    v_weight_decay: float = 0.5
    target_stop_nll: float = 0.05  # a target state stops once its new object's mean NLL is below this (0: never)
    target_stop_top1: bool = False  # ENCORE's most-probable stop: also once every new-object token leads everywhere …
    target_stop_margin: float = 0.0  # … by this many nats over the runner-up (with target_stop_top1; ours)
    kl_factor: float = 0.0625  # keeps "{subject} is a" predictions close to the original
    subject_repeat_weight: float = 0.0  # keeps a repeat of the subject after the fact spelled right (ours; target_state.py)
    chat_rows: bool = False  # chat models: target states and keys also from the fact as a chat turn (target_state.py)
    chat_subject_weight: float = 0.0  # with chat_rows: keeps the subject the chat row's reply writes spelled right (ours)
    max_iterations: int = 3  # editing passes per round (the paper's meaning, not the code's)
    refresh_drifted: bool = False  # also re-edit earlier facts that drifted beyond alpha (not in the paper)
    verify_passes: int = 0  # every round checks what the model writes; up to this many more passes for new facts it does not say yet (ours)
    chat_passes: bool = False  # the extra passes also go to facts whose chat reply does not say the new object (ours; off: research-log 2026-12-07)
    schedule_ramp_edits: int = 0  # λ and β grow with the edits in Kp up to this many (0: constant; schedule.py)
    schedule_start: float = 1.0  # share of λ (and of β − 1) a session starts with
    context_prefixes: int = field(default=5, metadata=_PREPARED)  # generated text prefixes in front of each prompt (plus the bare prompt)
    context_prefix_tokens: int = field(default=8, metadata=_PREPARED)  # length of each generated prefix
    stats_tokens: int = field(default=0, metadata=_PREPARED)  # token positions for C; 0 = the statistics module's default
    method: str = field(default="nse", metadata=_PROJECT)  # the editing method: "nse", "memit" (MEMIT_seq) or "alphaedit"; fixed per project
    nullspace_threshold: float = 0.02  # AlphaEdit: C's eigen-directions below this are free to change
    update_norm_weight: float = 0.0  # weight of ‖ΔW‖² in the solve (AlphaEdit's L2; 0 for NSE and MEMIT)
    norm_anchoring: bool = False  # NAS: rescale each target value v* to norm_anchor, skip one beyond 2×
    norm_anchor: float = 0.0  # NAS: mean ‖v*‖ of the probe edits on the original model (derived)
    encore: bool = False  # ENCORE: stop a target state once the new object is top-1 everywhere, + norm penalty
    encore_norm_weight: float = 0.0  # ENCORE: added to update_norm_weight when `encore` is on (derived)
    source: str = field(default="derived", metadata=_PROVENANCE)  # "preset:<name>", "derived" or "derived+user"
    notes: dict[str, str] = field(default_factory=dict, metadata=_PROVENANCE)  # how each derived value was chosen

    def to_dict(self) -> dict[str, object]:
        """The settings as JSON stores them (layers a list), so a dict read back from a file
        compares equal to this one."""
        data = dataclasses.asdict(self)
        data["layers"] = list(self.layers)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> NseHyperParams:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["layers"] = tuple(int(x) for x in values["layers"])
        return cls(**values)

    def with_overrides(self, **overrides: object) -> NseHyperParams:
        """A copy with user-set values; unknown names are an error, not silently ignored."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown NSE setting(s): {', '.join(sorted(unknown))}")
        if "layers" in overrides:
            overrides["layers"] = tuple(int(x) for x in overrides["layers"])  # type: ignore[union-attr]
        source = self.source if self.source.endswith("+user") else f"{self.source}+user"
        return dataclasses.replace(self, **overrides, source=source)  # type: ignore[arg-type]

    def validate(self, n_layers: int) -> None:
        """The settings' own checks; methods.check_settings adds their method's."""
        if not self.layers:
            raise ValueError("at least one layer must be edited")
        if list(self.layers) != list(range(self.layers[0], self.layers[-1] + 1)):
            raise ValueError(f"edited layers must be consecutive, got {list(self.layers)}")
        if self.layers[0] < 0 or self.layers[-1] >= n_layers:
            raise ValueError(f"edited layers {list(self.layers)} are outside the model's 0..{n_layers - 1}")
        if not 0 < self.neuron_threshold <= 1:
            raise ValueError("neuron_threshold must be in (0, 1]")
        if not 0 <= self.alpha < self.upper_bound:
            raise ValueError("alpha must be ≥ 0 and below upper_bound")
        if self.earlier_edits_weight <= 0:
            raise ValueError("earlier_edits_weight must be positive")
        if self.layer_share_ratio <= 0:
            raise ValueError("layer_share_ratio must be positive")
        if self.schedule_ramp_edits < 0 or not 0 < self.schedule_start <= 1:
            raise ValueError("schedule_ramp_edits must be ≥ 0 and schedule_start in (0, 1]")
        if self.subject_repeat_weight < 0 or self.chat_subject_weight < 0:
            raise ValueError("subject_repeat_weight and chat_subject_weight must be 0 (off) or more")
        if self.target_stop_margin < 0:
            raise ValueError("target_stop_margin must be 0 (the new object most probable) or more")
        if self.verify_passes < 0:
            raise ValueError("verify_passes must be 0 (check only, no extra passes) or more")
        if self.max_iterations < 1 or self.v_num_grad_steps < 1:
            raise ValueError("max_iterations and v_num_grad_steps must be at least 1")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.nullspace_threshold <= 0 or self.update_norm_weight < 0 or self.encore_norm_weight < 0:
            raise ValueError("nullspace_threshold must be positive, update_norm_weight and encore_norm_weight ≥ 0")
        if self.norm_anchoring and self.norm_anchor <= 0:
            raise ValueError("norm_anchoring needs a positive norm_anchor (derived settings measure it)")


def setting_scope(name: str) -> str:
    """ROUND, PROJECT, PREPARED or PROVENANCE for a field of NseHyperParams (KeyError if unknown)."""
    return {f.name: f.metadata.get("scope", ROUND) for f in dataclasses.fields(NseHyperParams)}[name]


def editable_settings() -> tuple[str, ...]:
    """The settings a user may change for one batch, in the order NseHyperParams declares them."""
    return tuple(f.name for f in dataclasses.fields(NseHyperParams) if f.metadata.get("scope", ROUND) == ROUND)


def _paper(layers: range, v_lr: float, steps: int, alpha: float, upper: float,
           mom2: float, threshold: float, name: str) -> NseHyperParams:
    return NseHyperParams(
        layers=tuple(layers), v_lr=v_lr, v_num_grad_steps=steps,
        alpha=alpha, upper_bound=upper, mom2_update_weight=mom2, neuron_threshold=threshold,
        source=f"preset:{name}",
    )


# The authors' released configurations (layers inclusive).
PRESETS: dict[str, NseHyperParams] = {
    "gpt2-xl": _paper(range(13, 18), 0.5, 20, 35.0, 150.0, 10000.0, 1.0, "gpt2-xl"),
    "gpt-j-6b": _paper(range(3, 9), 0.5, 25, 15.0, 100.0, 15000.0, 0.8, "gpt-j-6b"),
    "llama-3-8b": _paper(range(4, 9), 0.1, 25, 2.5, 50.0, 15000.0, 1.0, "llama-3-8b"),
}


def preset_name(model: PreTrainedModel) -> str | None:
    """Recognise the paper's three models by their shape, whatever folder they were loaded from."""
    c = model.config
    layers = getattr(c, "num_hidden_layers", None)
    hidden = getattr(c, "hidden_size", None)
    if c.model_type == "gpt2" and layers == 48 and hidden == 1600:
        return "gpt2-xl"
    if c.model_type == "gptj" and layers == 28 and hidden == 4096:
        return "gpt-j-6b"
    if c.model_type == "llama" and layers == 32 and hidden == 4096 and getattr(c, "vocab_size", 0) == 128256:
        return "llama-3-8b"
    return None


def relative_depth_layers(n_layers: int) -> tuple[int, ...]:
    """Blocks at the relative depth of Llama-3-8B's 4..8 of 32 (12.5 %–25 % of the stack), and
    two blocks below, never block 0. Lower blocks' keys at the subject overlap less across
    facts, so spreading the update down keeps a small model fluent and its earlier edits in
    place; block 0's keys mostly encode the token itself (measurements in derive.py)."""
    first = min(n_layers - 1, max(1, round(4 / 32 * n_layers) - 2))
    last = min(n_layers - 1, max(first + 1, round(8 / 32 * n_layers)))
    return tuple(range(first, last + 1))


def default_layers(model: PreTrainedModel, n_layers: int) -> tuple[int, ...]:
    """The layers NSE edits by default: the preset's, else the relative-depth rule."""
    name = preset_name(model)
    return PRESETS[name].layers if name else relative_depth_layers(n_layers)
