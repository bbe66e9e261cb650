"""Settings for models the paper did not tune: measured on the model itself, then cached.

- layers: the same relative depth as Llama-3-8B's 4..8 of 32 and two blocks below, never block
  0; v_loss_layer: the last block. Lower blocks' keys overlap less: for the first 1000 dev facts
  on SmolLM2 the participation ratio of the C-whitened keys is 250–296 at blocks 1–5, then 236 /
  198 / 178 at 6 / 7 / 8 and 35 at 14, and facts with the same true object grow alike above block
  5 (benchmarks/key_geometry.py); block 0's keys mostly encode the subject's last token. At 1000
  edits in rounds of 100 (target states cached), 2..8 / 3..8 / 1..8 gave efficacy 0.877 / 0.869 /
  0.889, specificity 0.695 / 0.691 / 0.697, first-round retention 0.95 / 0.93 / 0.95, fluency
  5.07 / 4.97 / 4.89 (5.13 before); 1..8 sits at the 0.95 × fluency line, so 2..8 it is. Earlier:
  3..8 instead of 4..8 gave efficacy 0.859 / 0.841 and fluency 5.09 / 4.83 (without refresh_drifted).
- layer_share_ratio: LAYER_SHARE_RATIO: each edited layer takes 0.9 × the residual share of the
  one below, so the lower layers, whose keys overlap less, carry a little more of the edit. Measured
  as above on 2..8: 1.0 (the paper's even spread) / 0.9 / 0.8 gave efficacy 0.877 / 0.896 / 0.895,
  generalization 0.810 / 0.816 / 0.816, specificity 0.695 / 0.700 / 0.701, first-round retention
  0.95 / 0.97 / 0.99, fluency 5.07 / 4.97 / 4.75; 0.8 falls below the 0.95 × fluency line.
- alpha / upper_bound: scaled to the measured ‖z − h‖ of a built-in set of probe edits
  (alpha = ALPHA_RATIO × median, upper_bound = UPPER_RATIO × median). In the paper's presets
  alpha is roughly half a typical distance and upper_bound 4–20 × alpha.
- v_lr: one Adam step moves a delta by about v_lr·√hidden; it is set so a step is
  STEP_RATIO of the median ‖h‖ at the subject token, so a typical delta (0.5–0.75 ‖h‖) is
  reached in a few steps. On SmolLM2, 0.08 left most facts short of the stop test after 25
  steps; 0.25 reaches it in 9 steps on average at the same edit quality.
- context_prefixes: CONTEXT_PREFIXES generated prefixes (plus the bare prompt). Every prefix
  is one more row in every target-state step; on SmolLM2, 2 instead of 5 gave the same
  efficacy and generalisation on 100 dev facts at 40 % of the cost.
- neuron_threshold: 0.8. Measured on SmolLM2, 100 dev facts in 2 rounds of 50: 0.6 / 0.8 / 1.0
  gave specificity 0.680 / 0.710 / 0.718, fluency 4.51 / 4.76 / 4.81 (5.13 before), first-round
  retention 0.98 / 0.96 / 0.96. 0.8 and 1.0 are within noise of each other; 0.8 updates fewer
  neurons (1.0 turns the neuron-level idea off), so it stays. At 1000 edits in rounds of 100
  with the other settings as here (target states cached), 0.6 / 0.8 / 0.9 / 1.0 gave efficacy
  0.846 / 0.896 / 0.892 / 0.902, specificity 0.687 / 0.700 / 0.705 / 0.707, first-round retention
  0.93 / 0.97 / 0.98 / 0.99 and fluency 4.89 / 4.97 / 4.96 / 4.88: 1.0 gains a little but puts
  fluency on the 0.95 × line, so 0.8 still stays.
- mom2_update_weight: C is a mean, tr(C) = E‖k‖², so what matters is λ relative to the
  number of neurons: the presets use λ/d_ff = 1.56 (GPT-2 XL), 0.92 (GPT-J), 1.05 (Llama-3);
  we use MOM2_PER_NEURON × d_ff × (median ‖k_fact‖² / tr C). With the paper's balance
  (MOM2_PER_NEURON 1) a 1,536-neuron MLP drifts: after 1000 SmolLM2 edits in rounds of 100 the
  accumulated update of the last edited layer was 2.1 × the original weights' norm, new facts
  started 60 % farther from their targets than the first ones, and fluency fell to 3.71 (5.13
  before). Measured on those 1000 dev facts (rounds of 100, target states cached):
  MOM2_PER_NEURON 1 / 4 / 8 / 16 → efficacy 0.605 / 0.835 / 0.841 / 0.775, first-round retention
  0.57 / 0.81 / 0.88 / 0.83, fluency 3.71 / 4.66 / 4.83 / 4.97 (the last two with
  earlier_edits_weight 10 and 5 passes).
- earlier_edits_weight: EARLIER_EDITS_WEIGHT. An earlier edit's key counts that many times in
  the solve: keys of 1000 facts overlap in 1,536 dimensions (participation ratio 24–150 per
  edited layer), and with weight 1 each round pulls the earlier facts' outputs along. Measured
  as above: 10 instead of 1 raised first-round retention 0.57 → 0.70 and fluency 3.71 → 4.01.
- max_iterations: MAX_ITERATIONS passes; the stronger regularisation leaves more facts short of
  alpha after each pass.
- refresh_drifted: on (not in the paper). Before its last pass, a round looks for earlier edits
  it moved beyond both alpha and the distance their own round left them at, and that pass pulls
  them back; their target states are still valid thanks to weights rewinding, so this costs
  layer updates only. Measured as above (3..8, target states cached): with λ 8 × and the check
  at the start of each round instead, efficacy 0.859 → 0.880, generalization 0.799 → 0.812,
  specificity 0.686 → 0.701, first-round retention 0.86 → 0.95, but fluency 5.09 → 4.82; λ 10 ×
  kept fluency (check at the start: 0.875 / 0.805 / 0.696 / 0.94 / 5.04; before the last pass,
  the default: 0.869 / 0.805 / 0.691 / 0.93 / 4.97, 654 s of editing instead of 537 s without
  refresh). First-round facts now keep the efficacy they had right after their round (0.93).
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
