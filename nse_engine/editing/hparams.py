"""NSE hyper-parameters, grouped by what they configure, and the paper's presets for its three models.

    NseHyperParams                 layers, method, provenance, and one section per concern:
      .target   TargetSettings     how each fact's target state is computed (target_state.py)
      .solve    Solve              the layer solve and its λ/β schedule (update.py, schedule.py)
      .passes   Passes             which facts a round edits, in how many passes (nse_round.py)
      .switches Switches           NAS and ENCORE, which work with any method
      .preparation Preparation     what a project prepares once (context prefixes, statistics)

Stored, typed and overridden by flat names: `to_dict()` is the one flat JSON object projects,
caches and results keep (its keys in `STORED_ORDER`), and `from_dict`, `flat`, `replace`,
`with_overrides` and `nse edit --set NAME=VALUE` take the same names. Each field's metadata says
who may change it (its scope) and which values it takes (a `Range`, or choices); `validate`
and the Advanced panel read it.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nse_engine.method_names import METHODS
from nse_engine.stats.precision import STATS_PRECISIONS

if TYPE_CHECKING:  # the app reads the settings' scopes and must not import transformers
    from transformers import PreTrainedModel


# Who may change a setting, as its field's metadata "scope" says (unmarked: ROUND). The round
# refuses another method or other layers (session.py); what a project prepares once is not read per
# round; provenance records where the values came from. The app's Advanced panel and `nse edit
# --set` offer only `editable_settings()`.
ROUND = "round"  # each batch may use its own value
PROJECT = "project"  # fixed when the project is created; a round refuses another value
PREPARED = "prepared"  # used once, when the project prepares editing (context prefixes, statistics)
PROVENANCE = "provenance"  # where the values came from, not a setting


@dataclass(frozen=True)
class Range:
    """The numbers a setting takes: `validate` refuses others, the Advanced panel's editor stops at them."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False  # the low end itself is refused ("positive")
    meaning: str = ""  # how a refusal says it, where the bare range would not

    def allows(self, value: float) -> bool:
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high

    def describe(self) -> str:
        if self.meaning:
            return self.meaning
        if self.high < math.inf:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        if self.low_open:
            return "positive" if self.low == 0 else f"above {self.low:g}"
        return "≥ 0" if self.low == 0 else f"at least {self.low:g}"


POSITIVE = Range(0, low_open=True)
NOT_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
SHARE = Range(0, 1, low_open=True)  # (0, 1]
OFF_OR_MORE = Range(0, meaning="0 (off) or more")


def setting(default: Any = dataclasses.MISSING, *, scope: str = ROUND, values: Range | None = None,
            choices: tuple[str, ...] | None = None) -> Any:
    """A field of a settings section: its default (none: required), scope and allowed values."""
    metadata = {"scope": scope, "range": values, "choices": choices}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TargetSettings:
    """How each fact's target state z is computed (target_state.py)."""

    v_lr: float  # Adam learning rate of the target-state delta
    v_num_grad_steps: int = setting(values=AT_LEAST_ONE)  # Adam steps per target state
    clamp_norm_factor: float = 0.75  # ‖delta‖ ≤ factor · ‖h‖
    v_weight_decay: float = 0.5
    target_stop_nll: float = 0.05  # a target state stops once its new object's mean NLL is below this (0: never)
    target_stop_top1: bool = False  # ENCORE's most-probable stop: also once every new-object token leads everywhere …
    target_stop_margin: float = setting(  # … by this many nats over the runner-up (with target_stop_top1; ours)
        0.0, values=Range(0, meaning="0 (the new object most probable) or more"))
    kl_factor: float = 0.0625  # keeps "{subject} is a" predictions close to the original
    subject_repeat_weight: float = setting(0.0, values=OFF_OR_MORE)  # keeps a repeat of the subject after the fact spelled right (ours)
    chat_rows: bool = False  # chat models: target states and keys also from the fact as a chat turn
    chat_subject_weight: float = setting(0.0, values=OFF_OR_MORE)  # with chat_rows: keeps the subject the chat row's reply writes spelled right (ours)


@dataclass(frozen=True)
class Solve:
    """The layer solve (update.py) and its λ/β schedule (schedule.py)."""

    mom2_update_weight: float  # weight of the general-text key covariance C in the solve (λ)
    neuron_threshold: float = setting(values=SHARE)  # share of summed |key| covered by the updated neurons (1.0 = all)
    earlier_edits_weight: float = setting(1.0, values=POSITIVE)  # weight of Kp (earlier edits' keys) in the solve (β); paper: 1
    layer_share_ratio: float = setting(1.0, values=POSITIVE)  # each edited layer takes this × the residual share of the one below; paper: 1
    nullspace_threshold: float = setting(0.02, values=POSITIVE)  # AlphaEdit: C's eigen-directions below this are free to change
    update_norm_weight: float = setting(0.0, values=NOT_NEGATIVE)  # weight of ‖ΔW‖² in the solve (AlphaEdit's L2; 0 for NSE and MEMIT)
    schedule_ramp_edits: int = setting(0, values=NOT_NEGATIVE)  # λ and β grow with the edits in Kp up to this many (0: constant)
    schedule_start: float = setting(1.0, values=SHARE)  # share of λ (and of β − 1) a session starts with


@dataclass(frozen=True)
class Passes:
    """Which facts a round edits, and its editing passes (nse_round.py)."""

    alpha: float  # a fact within this distance of its target state needs no further pass (≥ 0, below upper_bound)
    upper_bound: float  # a fact farther than this from its target state is not edited (outlier)
    max_iterations: int = setting(3, values=AT_LEAST_ONE)  # editing passes per round (the paper's meaning, not the code's)
    refresh_drifted: bool = False  # also re-edit earlier facts that drifted beyond alpha (not in the paper)
    verify_passes: int = setting(  # every round checks what the model writes; up to this many more passes for new facts it does not say yet (ours)
        0, values=Range(0, meaning="0 (check only, no extra passes) or more"))
    chat_passes: bool = False  # the extra passes also go to facts whose chat reply does not say the new object (ours; off: research-log 2026-12-07)


@dataclass(frozen=True)
class Switches:
    """NAS and ENCORE, which work with any method."""

    norm_anchoring: bool = False  # NAS: rescale each target value v* to norm_anchor, skip one beyond 2×
    norm_anchor: float = 0.0  # NAS: mean ‖v*‖ of the probe edits on the original model (derived; positive when on)
    encore: bool = False  # ENCORE: stop a target state once the new object is top-1 everywhere, + norm penalty
    encore_norm_weight: float = setting(0.0, values=NOT_NEGATIVE)  # ENCORE: added to update_norm_weight when `encore` is on (derived)


@dataclass(frozen=True)
class Preparation:
    """What a project prepares once, from the original weights; a batch cannot change it."""

    context_prefixes: int = setting(5, scope=PREPARED)  # generated text prefixes in front of each prompt (plus the bare prompt)
    context_prefix_tokens: int = setting(8, scope=PREPARED)  # length of each generated prefix
    stats_tokens: int = setting(0, scope=PREPARED)  # token positions for C; 0 = the statistics module's default
    stats_precision: str = setting("float32", scope=PREPARED, choices=STATS_PRECISIONS)  # C's matrix products (derived)


# NseHyperParams' sections, by attribute, in the order the Advanced panel shows them.
SECTIONS: dict[str, type] = {"target": TargetSettings, "solve": Solve, "passes": Passes, "switches": Switches,
                             "preparation": Preparation}
# The flat names in the order projects, caches and results have stored them since before the
# sections: `to_dict` keeps it, so what is written stays byte-identical.
STORED_ORDER = (
    "layers", "v_lr", "v_num_grad_steps", "alpha", "upper_bound", "mom2_update_weight", "neuron_threshold",
    "earlier_edits_weight", "layer_share_ratio", "clamp_norm_factor", "v_weight_decay", "target_stop_nll",
    "target_stop_top1", "target_stop_margin", "kl_factor", "subject_repeat_weight", "chat_rows",
    "chat_subject_weight", "max_iterations", "refresh_drifted", "verify_passes", "chat_passes",
    "schedule_ramp_edits", "schedule_start", "context_prefixes", "context_prefix_tokens", "stats_tokens", "method",
    "nullspace_threshold", "update_norm_weight", "norm_anchoring", "norm_anchor", "encore", "encore_norm_weight",
    "stats_precision", "source", "notes",
)


@dataclass
class NseHyperParams:
    """Every knob of one NSE edit round; `editable_settings()` names those a batch may change."""

    layers: tuple[int, ...] = setting(scope=PROJECT)  # consecutive blocks whose MLP output projections are edited
    target: TargetSettings
    solve: Solve
    passes: Passes
    switches: Switches = field(default_factory=Switches)
    preparation: Preparation = field(default_factory=Preparation)
    method: str = setting("nse", scope=PROJECT, choices=METHODS)  # "nse", "memit" (MEMIT_seq) or "alphaedit"; fixed per project
    source: str = setting("derived", scope=PROVENANCE)  # "preset:<name>", "derived" or "derived+user"
    notes: dict[str, str] = field(default_factory=dict, metadata={"scope": PROVENANCE})  # how each derived value was chosen

    @classmethod
    def flat(cls, **values: Any) -> NseHyperParams:
        """Settings from flat names (as `to_dict` writes them); an unknown name is an error."""
        _check_known(values)
        top = {name: values[name] for name in _TOP if name in values}
        if "layers" in top:
            top["layers"] = tuple(int(x) for x in top["layers"])
        sections = {attr: kind(**{f.name: values[f.name] for f in dataclasses.fields(kind) if f.name in values})
                    for attr, kind in SECTIONS.items()}
        return cls(**top, **sections)

    def to_dict(self) -> dict[str, object]:
        """The settings as JSON stores them: flat, in `STORED_ORDER`, layers a list, so a dict read
        back from a file compares equal to this one."""
        data = {name: self.value(name) for name in STORED_ORDER}
        data["layers"] = list(self.layers)
        data["notes"] = dict(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> NseHyperParams:
        """Settings as stored; names this version does not know (an old project's) are left out,
        and those it added since take their defaults."""
        return cls.flat(**{k: v for k, v in data.items() if k in _SECTION_OF})

    def value(self, name: str) -> Any:
        """The setting of flat name `name` (KeyError if unknown)."""
        section = _SECTION_OF[name]
        return getattr(getattr(self, section) if section else self, name)

    def replace(self, **values: Any) -> NseHyperParams:
        """A copy with the settings of these flat names changed."""
        _check_known(values)
        changes: dict[str, Any] = {name: values[name] for name in _TOP if name in values}
        for attr, kind in SECTIONS.items():
            own = {f.name: values[f.name] for f in dataclasses.fields(kind) if f.name in values}
            if own:
                changes[attr] = dataclasses.replace(getattr(self, attr), **own)
        return dataclasses.replace(self, **changes)

    def with_overrides(self, **overrides: object) -> NseHyperParams:
        """A copy with user-set values; unknown names are an error, not silently ignored."""
        if "layers" in overrides:
            overrides["layers"] = tuple(int(x) for x in overrides["layers"])  # type: ignore[union-attr]
        source = self.source if self.source.endswith("+user") else f"{self.source}+user"
        return self.replace(**overrides, source=source)

    def validate(self, n_layers: int) -> None:
        """The settings' own checks (each field's range or choices, and those between fields);
        methods.check_settings adds their method's."""
        if not self.layers:
            raise ValueError("at least one layer must be edited")
        if list(self.layers) != list(range(self.layers[0], self.layers[-1] + 1)):
            raise ValueError(f"edited layers must be consecutive, got {list(self.layers)}")
        if self.layers[0] < 0 or self.layers[-1] >= n_layers:
            raise ValueError(f"edited layers {list(self.layers)} are outside the model's 0..{n_layers - 1}")
        for name in STORED_ORDER:
            metadata, value = _FIELDS[name].metadata, self.value(name)
            if metadata.get("range") is not None and not metadata["range"].allows(value):
                raise ValueError(f"{name} must be {metadata['range'].describe()}")
            if metadata.get("choices") is not None and value not in metadata["choices"]:
                raise ValueError(f"{name} must be one of {', '.join(metadata['choices'])}, got {value!r}")
        if not 0 <= self.passes.alpha < self.passes.upper_bound:
            raise ValueError("alpha must be ≥ 0 and below upper_bound")
        if self.switches.norm_anchoring and self.switches.norm_anchor <= 0:
            raise ValueError("norm_anchoring needs a positive norm_anchor (derived settings measure it)")


# Every flat name: its field, and the section attribute that holds it (None: NseHyperParams itself).
_TOP = tuple(f.name for f in dataclasses.fields(NseHyperParams) if f.name not in SECTIONS)
_FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(NseHyperParams) if f.name in _TOP} | {
    f.name: f for kind in SECTIONS.values() for f in dataclasses.fields(kind)}
_SECTION_OF: dict[str, str | None] = dict.fromkeys(_TOP) | {
    f.name: attr for attr, kind in SECTIONS.items() for f in dataclasses.fields(kind)}


def _check_known(values: dict[str, Any]) -> None:
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown NSE setting(s): {', '.join(sorted(unknown))}")


def setting_scope(name: str) -> str:
    """ROUND, PROJECT, PREPARED or PROVENANCE for a flat setting name (KeyError if unknown)."""
    return _FIELDS[name].metadata.get("scope", ROUND)


def setting_section(name: str) -> str | None:
    """The section attribute of NseHyperParams that holds `name` ("target", "solve", …; None for
    layers, method and provenance; KeyError if unknown)."""
    return _SECTION_OF[name]


def setting_range(name: str) -> Range | None:
    """The numbers setting `name` takes, where its field says (None: any, or not a number)."""
    return _FIELDS[name].metadata.get("range")


def setting_types() -> dict[str, Any]:
    """Each flat setting name's type, as its field declares it (int, float, bool, str, tuple…)."""
    kinds = [NseHyperParams, *SECTIONS.values()]
    hints = {name: hint for kind in kinds for name, hint in typing.get_type_hints(kind).items()}
    return {name: hints[name] for name in STORED_ORDER}


def editable_settings() -> tuple[str, ...]:
    """The settings a user may change for one batch, in the order projects store them."""
    return tuple(name for name in STORED_ORDER if setting_scope(name) == ROUND)


def _paper(layers: range, v_lr: float, steps: int, alpha: float, upper: float,
           mom2: float, threshold: float, name: str) -> NseHyperParams:
    return NseHyperParams.flat(
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
