"""Settings for models the paper did not tune: measured on the model itself, then cached.

Layers at the relative depth of Llama-3-8B's span (plus two blocks below), alpha / upper_bound
and v_lr scaled to distances measured on built-in probe edits, λ scaled to the keys' energy
against general text, and the constants below for the rest. Why each rule and constant, with
the measurements behind them: docs/settings.md.
"""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path

import torch

from nse_engine.atomic import atomic_path
from nse_engine.chat import is_chat_model
from nse_engine.editing.hparams import PRESETS, NseHyperParams, preset_name, relative_depth_layers
from nse_engine.editing.methods import method_for
from nse_engine.editing.norm_anchor import reference_norm, target_values
from nse_engine.editing.prompts import generate_context_prefixes
from nse_engine.editing.reach import needed_reach
from nse_engine.editing.session import EditingSession
from nse_engine.editing.target_state import compute_target_states
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import EditPoints
from nse_engine.model.devices import bf16_speedup
from nse_engine.model.fingerprint import config_digest
from nse_engine.model.loading import LoadedModel
from nse_engine.paths import cache_dir
from nse_engine.progress import JobControl, silent
from nse_engine.stats.second_moment import StatsSpec, layer_stats

log = logging.getLogger(__name__)

ALPHA_RATIO = 0.5
UPPER_RATIO = 5.0
STEP_RATIO = 0.25
CONTEXT_PREFIXES = 2
MOM2_PER_NEURON = 10.0
EARLIER_EDITS_WEIGHT = 10.0
MAX_ITERATIONS = 5
# Extra passes for new facts the model does not write after the round, while their passes still
# move them (nse_round.verify_written): at 100 × 10 and 200 × 100 on SmolLM2 they raise
# efficacy and what the model writes at no cost in specificity (docs/settings.md).
VERIFY_PASSES = 3
LAYER_SHARE_RATIO = 0.9
# ENCORE's ‖ΔW‖² weight as a share of a fact key's energy (median ‖k‖² at the last edited layer),
# as AlphaEdit's L2 is (methods.ALPHAEDIT_L2_PER_KEY): no public measurement carries over to other models.
ENCORE_NORM_PER_KEY = 0.1
# alpha is at most ALPHA_RATIO × the median distance, less where the probe edits must get closer
# to z before REACH_SHARE of them prefer the new object (reach.py). A model that needs to get
# closer than ALPHA_RATIO allows gets λ / CLOSE_REACH_DIVISOR: at the derived λ five passes do not
# get there (Gemma 3 270M: 90 % of the way needed, 35 % reached; docs/settings.md).
REACH_SHARE = 0.9
CLOSE_REACH_DIVISOR = 10.0
# Weight of the chat row's reply spelling the subject (chat_subject_weight) for chat models: at 1,
# 100 × 10 on SmolLM2 keeps 0.847 of the subjects spelled against 0.724 without (research log 2026-12-07).
CHAT_SUBJECT_WEIGHT = 1.0
# Token positions of general text C is estimated from: the smallest sample whose every figure at
# 100 × 10 on SmolLM2 is within 0.01 of the full 524,288's (or better); a quarter of the time
# (docs/statistics.md, research log 2026-12-07). 0 in a project's settings keeps the full sample.
STATS_TOKENS = 131_072
# The statistics multiply in bf16 where the device does a statistics-sized product at least this
# many times faster than in float32 (on this project's CPU with AMX: 4.9–8 ×, and the whole pass
# 2.3 ×, so a device just above the bar still gains): on SmolLM2 C moves 0.3–0.6 %, a thirtieth of
# the sampling noise, and every figure at 100 × 10 is within 0.01 of float32's (docs/statistics.md,
# research log 2026-12-08).
BF16_SPEEDUP = 3.0
DERIVATION_VERSION = 17

# Counterfactual probe edits across common relations; only their geometry is used. One a line,
# in the columns of a fact file.
_PROBE_TABLE = """
subject           | prompt                         | target_new | target_true
France            | The capital of {} is           | Tokyo      | Paris
Germany           | The capital of {} is           | Madrid     | Berlin
Danielle Darrieux | The mother tongue of {} is     | English    | French
Toko Yasuda       | {} plays the instrument        | piano      | guitar
Apple             | {} was founded by              | Bill Gates | Steve Jobs
The Eiffel Tower  | {} is located in the city of   | Rome       | Paris
Lionel Messi      | {} plays the sport of          | basketball | football
Tokyo             | {} is a city in the country of | Brazil     | Japan
Microsoft         | The headquarters of {} is in   | London     | Redmond
Mount Everest     | {} is located in               | Africa     | Asia
Albert Einstein   | {} was a famous                | painter    | physicist
Berlin            | {} is the capital of           | Canada     | Germany
"""
PROBES = [EditRequest(*(cell.strip() for cell in row.split("|"))) for row in _PROBE_TABLE.strip().splitlines()[1:]]


def default_hparams(
    loaded: LoadedModel, points: EditPoints, control: JobControl | None = None, method: str = "nse"
) -> NseHyperParams:
    """The paper's preset for its models, otherwise settings derived (and cached) for this one."""
    known = _known_hparams(loaded, method)
    if known is not None:
        return known
    hparams = derive_hparams(loaded, points, control, method)
    cache_file = _cache_file(loaded, method)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache_file) as tmp:  # another process reading the cache never sees half a file
        tmp.write_text(json.dumps(hparams.to_dict(), indent=2), encoding="utf-8")
    return hparams


def settings_known(loaded: LoadedModel, method: str = "nse") -> bool:
    """Whether `default_hparams` answers at once (a preset, or settings derived before and cached)."""
    return _known_hparams(loaded, method) is not None


def _known_hparams(loaded: LoadedModel, method: str) -> NseHyperParams | None:
    name = preset_name(loaded.model)
    if name is not None:
        return for_method(PRESETS[name], method, alphaedit_l2=10.0, nullspace_threshold=0.02)
    cache_file = _cache_file(loaded, method)
    if cache_file.exists():
        try:
            return NseHyperParams.from_dict(json.loads(cache_file.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable derived settings %s: %s", cache_file, exc)
    return None


def _cache_file(loaded: LoadedModel, method: str) -> Path:
    # per device type: the statistics' precision is chosen for the device (stats_precision_for)
    name = f"{config_digest(loaded.model)[:24]}-{method}-{loaded.device.type}-v{DERIVATION_VERSION}.json"
    return cache_dir() / "hparams" / name


def for_method(
    nse: NseHyperParams, method: str, alphaedit_l2: float, nullspace_threshold: float, notes: dict[str, str] | None = None
) -> NseHyperParams:
    """NSE's settings turned into those of `method` (its key): MEMIT_seq's loop, or AlphaEdit's with
    `alphaedit_l2` and `nullspace_threshold` (methods.py)."""
    return method_for(method).adapted(nse, alphaedit_l2, nullspace_threshold, notes)


def stats_precision_for(device: torch.device) -> tuple[str, float]:
    """The statistics' precision on `device` ("bfloat16" where it multiplies bf16 BF16_SPEEDUP times
    as fast as float32, else "float32"), and the speed-up measured."""
    speedup = bf16_speedup(device)
    return ("bfloat16" if speedup >= BF16_SPEEDUP else "float32"), speedup


def _precision_note(precision: str, speedup: float, device: torch.device) -> str:
    if speedup == 0:
        return f"float32: bf16 products fail on this {device.type}"
    measured = f"this {device.type} multiplies bf16 {speedup:.1f} × as fast as float32"
    if precision == "bfloat16":
        return f"bfloat16: {measured} (bf16 from {BF16_SPEEDUP:g} ×; on SmolLM2 C moved 0.3–0.6 %, every figure kept)"
    return f"float32: {measured}, under the {BF16_SPEEDUP:g} × that bf16 statistics need"


def derive_hparams(
    loaded: LoadedModel, points: EditPoints, control: JobControl | None = None, method: str = "nse"
) -> NseHyperParams:
    """Measure the model on the probe edits and scale the settings to what was measured."""
    control = control or silent()
    chat = is_chat_model(loaded)
    control.report("deriving settings", 0, 2, "generating context prefixes")
    layers = relative_depth_layers(points.n_layers)
    base = NseHyperParams.flat(
        layers=layers, v_lr=0.5, v_num_grad_steps=25,
        alpha=0.0, upper_bound=1.0, mom2_update_weight=float(points.d_ff), neuron_threshold=0.8,
        context_prefixes=CONTEXT_PREFIXES,
    )
    session = EditingSession(loaded, base, points)
    session.prefixes = generate_context_prefixes(loaded.model, loaded.tokenizer, base.preparation.context_prefixes,
                                                 base.preparation.context_prefix_tokens)
    h_norm = float(session.reader.hidden_at_last_layer(PROBES).norm(dim=1).median())
    v_lr = round(STEP_RATIO * h_norm / points.hidden_size**0.5, 3)
    base = base.with_overrides(v_lr=v_lr)
    control.report("deriving settings", 0, 2, "measuring target distances")
    with torch.enable_grad():
        targets = compute_target_states(loaded.model, loaded.tokenizer, points, PROBES, base,
                                        session.prefixes, control)
    distances = (targets.z - targets.h_init).norm(dim=1).tolist()
    median = statistics.median(distances)
    reach = needed_reach(loaded, points, layers[-1], PROBES, targets.z, targets.h_init, REACH_SHARE)
    alpha_ratio = min(ALPHA_RATIO, round(1.0 - reach, 2))
    values = target_values(targets.z, targets.h_init, session.reader.mlp_output_at_last_layer(PROBES))
    anchor = round(reference_norm(values.norm(dim=1)), 2)
    control.report("deriving settings", 1, 2, "measuring keys")
    keys = session.reader.average_keys(PROBES, [layers[-1]], session.prefixes)[layers[-1]].double()  # (probes, d_ff)
    precision, speedup = stats_precision_for(loaded.device)
    spec = StatsSpec(n_tokens=STATS_TOKENS, precision=precision)
    moment = layer_stats(loaded, points, list(layers), spec, control)[layers[-1]].moment
    key_norm2 = float(keys.pow(2).sum(1).median())
    key_energy = key_norm2 / float(moment.diagonal().sum())
    mom2 = round(MOM2_PER_NEURON * points.d_ff * key_energy, 1)
    mom2_note = f"{MOM2_PER_NEURON} × d_ff {points.d_ff} × median ‖k‖²/tr C {key_energy:.3f}"
    if alpha_ratio < ALPHA_RATIO:
        mom2 = round(mom2 / CLOSE_REACH_DIVISOR, 1)
        mom2_note += f" / {CLOSE_REACH_DIVISOR:g}: facts must get {reach:.0%} of the way to z, not {1 - ALPHA_RATIO:.0%}"
    control.report("deriving settings", 2, 2, "done")
    nse = NseHyperParams.flat(
        layers=layers, v_lr=v_lr, v_num_grad_steps=25,
        alpha=round(alpha_ratio * median, 2), upper_bound=round(UPPER_RATIO * median, 2),
        mom2_update_weight=mom2, neuron_threshold=0.8, earlier_edits_weight=EARLIER_EDITS_WEIGHT,
        layer_share_ratio=LAYER_SHARE_RATIO,
        max_iterations=MAX_ITERATIONS, refresh_drifted=True, verify_passes=VERIFY_PASSES,
        chat_rows=chat, chat_subject_weight=CHAT_SUBJECT_WEIGHT if chat else 0.0,
        context_prefixes=CONTEXT_PREFIXES, stats_tokens=STATS_TOKENS, stats_precision=precision, source="derived",
        norm_anchor=anchor, encore_norm_weight=round(ENCORE_NORM_PER_KEY * key_norm2, 3),
        notes={
            "layers": f"relative depth of Llama-3-8B's 4..8 of 32, and two blocks below (never block 0) → {layers[0]}..{layers[-1]} of {points.n_layers}",
            "v_lr": f"{STEP_RATIO} × median ‖h‖ {h_norm:.1f} / √{points.hidden_size}",
            "alpha_upper_bound": f"{alpha_ratio} and {UPPER_RATIO} × median ‖z − h‖ {median:.2f} of {len(PROBES)} probe edits "
                                 f"({REACH_SHARE:.0%} of them prefer the new object {reach:.0%} of the way to z)",
            "context_prefixes": f"{CONTEXT_PREFIXES} generated prefixes plus the bare prompt (each costs a row per step)",
            "mom2_update_weight": mom2_note,
            "neuron_threshold": "0.8 (the paper's GPT-J value); on SmolLM2 0.8 and 1.0 tied and 0.6 lost specificity and fluency",
            "earlier_edits_weight": f"{EARLIER_EDITS_WEIGHT}: earlier edits' keys overlap new ones in a small MLP; 1 lets them drift",
            "layer_share_ratio": f"{LAYER_SHARE_RATIO}: the lower edited layers, whose keys overlap less, take a little more of each edit",
            "max_iterations": f"{MAX_ITERATIONS} passes: the stronger regularisation needs more to reach alpha",
            "refresh_drifted": "on: earlier edits that later rounds moved away are pulled back (retention 0.86 → 0.95 at 1000 edits)",
            "verify_passes": f"{VERIFY_PASSES}: new facts the model does not write yet get passes of their own while those still move them "
                             "(generation 0.80 → 0.90 at 100 × 10, 0.745 → 0.815 at 200 × 100, specificity kept)",
            "chat_rows": ("on for a chat model: target states and keys also from the fact as a chat turn, with the "
                          f"reply's subject spelled at weight {CHAT_SUBJECT_WEIGHT:g} (at 100 × 10 chat answer 0.49 → 0.64, "
                          "subject spelled 0.735 → 0.847, 1.15 × the time per round)"
                          if chat else "off: a model without a chat template"),
            "stats_tokens": (f"{STATS_TOKENS:,}: at 100 × 10 every figure within 0.01 of the full 524,288 or better, "
                             "in a quarter of the time; 32,768 and 65,536 lost 0.08 of fluency"),
            "stats_precision": _precision_note(precision, speedup, loaded.device),
            "norm_anchor": f"NAS: trimmed mean ‖v*‖ of {len(PROBES)} probe edits on the original model",
            "encore_norm_weight": f"{ENCORE_NORM_PER_KEY} × median ‖k‖² {key_norm2:.1f} (used when encore is on)",
        },
    )
    return method_for(method).derived(nse, moment, key_norm2, layers[-1])
