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

import torch

from nse_engine.editing.hparams import PRESETS, NseHyperParams, preset_name, relative_depth_layers
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import EditPoints
from nse_engine.model.fingerprint import config_digest
from nse_engine.model.loading import LoadedModel
from nse_engine.paths import cache_dir
from nse_engine.progress import JobControl, silent

log = logging.getLogger(__name__)

ALPHA_RATIO = 0.5
UPPER_RATIO = 5.0
STEP_RATIO = 0.25
CONTEXT_PREFIXES = 2
MOM2_PER_NEURON = 10.0
EARLIER_EDITS_WEIGHT = 10.0
MAX_ITERATIONS = 5
LAYER_SHARE_RATIO = 0.9
DERIVATION_VERSION = 10

# Counterfactual probe edits across common relations; only their geometry is used.
PROBES = [
    EditRequest("France", "The capital of {} is", "Tokyo", "Paris"),
    EditRequest("Germany", "The capital of {} is", "Madrid", "Berlin"),
    EditRequest("Danielle Darrieux", "The mother tongue of {} is", "English", "French"),
    EditRequest("Toko Yasuda", "{} plays the instrument", "piano", "guitar"),
    EditRequest("Apple", "{} was founded by", "Bill Gates", "Steve Jobs"),
    EditRequest("The Eiffel Tower", "{} is located in the city of", "Rome", "Paris"),
    EditRequest("Lionel Messi", "{} plays the sport of", "basketball", "football"),
    EditRequest("Tokyo", "{} is a city in the country of", "Brazil", "Japan"),
    EditRequest("Microsoft", "The headquarters of {} is in", "London", "Redmond"),
    EditRequest("Mount Everest", "{} is located in", "Africa", "Asia"),
    EditRequest("Albert Einstein", "{} was a famous", "painter", "physicist"),
    EditRequest("Berlin", "{} is the capital of", "Canada", "Germany"),
]


def default_hparams(loaded: LoadedModel, points: EditPoints, control: JobControl | None = None) -> NseHyperParams:
    """The paper's preset for its models, otherwise settings derived (and cached) for this one."""
    name = preset_name(loaded.model)
    if name is not None:
        return PRESETS[name]
    cache_file = cache_dir() / "hparams" / f"{config_digest(loaded.model)[:24]}-v{DERIVATION_VERSION}.json"
    if cache_file.exists():
        try:
            return NseHyperParams.from_dict(json.loads(cache_file.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable derived settings %s: %s", cache_file, exc)
    hparams = derive_hparams(loaded, points, control)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(hparams.to_dict(), indent=2), encoding="utf-8")
    return hparams


def derive_hparams(loaded: LoadedModel, points: EditPoints, control: JobControl | None = None) -> NseHyperParams:
    """Measure the model on the probe edits and scale the settings to what was measured."""
    from nse_engine.editing.prompts import generate_context_prefixes
    from nse_engine.editing.session import EditingSession
    from nse_engine.editing.target_state import compute_target_states

    control = control or silent()
    layers = relative_depth_layers(points.n_layers)
    base = NseHyperParams(
        layers=layers, v_loss_layer=points.n_layers - 1, v_lr=0.5, v_num_grad_steps=25,
        alpha=0.0, upper_bound=1.0, mom2_update_weight=float(points.d_ff), neuron_threshold=0.8,
        context_prefixes=CONTEXT_PREFIXES,
    )
    session = EditingSession(loaded, base, points)
    session.prefixes = generate_context_prefixes(loaded.model, loaded.tokenizer, base.context_prefixes,
                                                 base.context_prefix_tokens)
    h_norm = float(session.reader.hidden_at_last_layer(PROBES).norm(dim=1).median())
    v_lr = round(STEP_RATIO * h_norm / points.hidden_size**0.5, 3)
    base = base.with_overrides(v_lr=v_lr)
    control.report("deriving settings", 0, 2, "measuring target distances")
    with torch.enable_grad():
        targets = compute_target_states(loaded.model, loaded.tokenizer, points, PROBES, base,
                                        session.prefixes, control)
    distances = (targets.z - targets.h_init).norm(dim=1).tolist()
    median = statistics.median(distances)
    control.report("deriving settings", 1, 2, "measuring keys")
    keys = session.reader.average_keys(PROBES, [layers[-1]], session.prefixes)[layers[-1]].double()  # (probes, d_ff)
    from nse_engine.stats.second_moment import second_moments

    moment = second_moments(loaded, points, list(layers), control=control)[layers[-1]]
    key_energy = float(keys.pow(2).sum(1).median()) / float(moment.diagonal().sum())
    mom2 = round(MOM2_PER_NEURON * points.d_ff * key_energy, 1)
    control.report("deriving settings", 2, 2, "done")
    return NseHyperParams(
        layers=layers, v_loss_layer=points.n_layers - 1, v_lr=v_lr, v_num_grad_steps=25,
        alpha=round(ALPHA_RATIO * median, 2), upper_bound=round(UPPER_RATIO * median, 2),
        mom2_update_weight=mom2, neuron_threshold=0.8, earlier_edits_weight=EARLIER_EDITS_WEIGHT,
        layer_share_ratio=LAYER_SHARE_RATIO,
        max_iterations=MAX_ITERATIONS, refresh_drifted=True, context_prefixes=CONTEXT_PREFIXES, source="derived",
        notes={
            "layers": f"relative depth of Llama-3-8B's 4..8 of 32, and two blocks below (never block 0) → {layers[0]}..{layers[-1]} of {points.n_layers}",
            "v_lr": f"{STEP_RATIO} × median ‖h‖ {h_norm:.1f} / √{points.hidden_size}",
            "alpha_upper_bound": f"{ALPHA_RATIO} and {UPPER_RATIO} × median ‖z − h‖ {median:.2f} of {len(PROBES)} probe edits",
            "context_prefixes": f"{CONTEXT_PREFIXES} generated prefixes plus the bare prompt (each costs a row per step)",
            "mom2_update_weight": f"{MOM2_PER_NEURON} × d_ff {points.d_ff} × median ‖k‖²/tr C {key_energy:.3f}",
            "neuron_threshold": "0.8 (the paper's GPT-J value); on SmolLM2 0.8 and 1.0 tied and 0.6 lost specificity and fluency",
            "earlier_edits_weight": f"{EARLIER_EDITS_WEIGHT}: earlier edits' keys overlap new ones in a small MLP; 1 lets them drift",
            "layer_share_ratio": f"{LAYER_SHARE_RATIO}: the lower edited layers, whose keys overlap less, take a little more of each edit",
            "max_iterations": f"{MAX_ITERATIONS} passes: the stronger regularisation needs more to reach alpha",
            "refresh_drifted": "on: earlier edits that later rounds moved away are pulled back (retention 0.86 → 0.95 at 1000 edits)",
        },
    )
