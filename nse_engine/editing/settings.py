"""Reading editing settings the user types (`nse edit --set NAME=VALUE`, the app's Advanced panel).

    parse_setting(name, text) -> value      one setting, typed from NseHyperParams, checked alone
    apply_settings(hparams, values, n_layers) -> NseHyperParams   all of them, checked together
    check_batch_setting(name)               refuses a setting one batch cannot change (hparams' scopes)

Both raise `SettingsError` with a message that names the setting and what it allows. The checks
are `methods.check_settings`' (each field's range or choices, as its metadata says, and the
method's own rules): one setting alone is checked by putting it into settings
that pass every other check; what depends on other settings or on the model (alpha below
upper_bound, layers inside the model) is checked by `apply_settings`.
"""

from __future__ import annotations

import json
import math
import typing
from typing import Any, Mapping

from nse_engine.editing.hparams import (
    PREPARED,
    PROJECT,
    PROVENANCE,
    STORED_ORDER,
    NseHyperParams,
    setting_scope,
    setting_types,
)
from nse_engine.editing.methods import check_settings
from nse_engine.errors import SettingsError

NOT_SETTINGS = tuple(name for name in STORED_ORDER if setting_scope(name) == PROVENANCE)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_ANY_MODEL = 10**6  # layer count under which a setting alone is checked (the model is checked later)

_TYPES: dict[str, Any] = setting_types()
SETTING_NAMES = tuple(name for name in STORED_ORDER if name not in NOT_SETTINGS)

# Passes every check of `validate` whatever one setting is changed to (unless that setting is wrong).
_PERMISSIVE = NseHyperParams.flat(
    layers=(0,), v_lr=0.5, v_num_grad_steps=1, alpha=0.0, upper_bound=math.inf,
    mom2_update_weight=1.0, neuron_threshold=1.0, norm_anchor=1.0,
)


def parse_setting(name: str, text: str) -> Any:
    """The value of setting `name` written as `text` ("0.5", "true", "4,5,6" or "4-6" for layers)."""
    return check_setting(name, text)


def check_setting(name: str, value: Any) -> Any:
    """`value` (text, or already a number / bool / list) as setting `name` takes it, checked alone."""
    if name in NOT_SETTINGS:
        raise SettingsError(f"{name!r} is not a setting: it records where the settings came from")
    if name not in _TYPES:
        raise SettingsError(f"unknown setting {name!r}; settings are: {', '.join(SETTING_NAMES)}")
    typed = _typed(name, _TYPES[name], value)
    try:
        check_settings(_PERMISSIVE.replace(**{name: typed}), _ANY_MODEL)
    except ValueError as exc:
        raise SettingsError(f"{name}={value}: {exc}") from None
    return typed


def check_batch_setting(name: str) -> None:
    """Refuse, before anything is loaded, a setting that one batch cannot change: the round would
    refuse another method or other layers, and a prepared-once value would be silently unused."""
    scope = setting_scope(name) if name in _TYPES else None
    if scope == PROJECT:
        how = "choose it with --method when the project is created" if name == "method" else \
            "start a new project to edit other layers"
        raise SettingsError(f"{name} is fixed for a project and cannot be set for a batch; {how}")
    if scope == PREPARED:
        raise SettingsError(f"{name} is used once, when the project prepares editing, and cannot be set for a batch")


def apply_settings(hparams: NseHyperParams, values: Mapping[str, Any], n_layers: int) -> NseHyperParams:
    """`hparams` with the user's `values`, each checked alone and then all together for this model."""
    typed = {name: check_setting(name, value) for name, value in values.items()}
    changed = hparams.with_overrides(**typed)
    try:
        check_settings(changed, n_layers)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return changed


def _typed(name: str, kind: Any, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise SettingsError(f"{name} must be true or false, got {_shown(value)}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {_shown(value)}") from None
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
            return float(value)
        try:
            number = float(str(value).strip())
        except ValueError:
            number = math.nan
        if math.isnan(number):
            raise SettingsError(f"{name} must be a number, got {_shown(value)}")
        return number
    if kind is str:
        return str(value).strip()
    if typing.get_origin(kind) is tuple:
        return _layers(name, value)
    raise SettingsError(f"{name} cannot be set")


def _layers(name: str, value: Any) -> tuple[int, ...]:
    """Layer numbers: a list, or text such as "4,5,6", "4-6" or "[4, 5, 6]"."""
    problem = SettingsError(f"{name} must be layer numbers such as 4,5,6 or 4-6, got {_shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise problem from None
        else:
            try:
                numbers: list[int] = []
                for part in text.split(","):
                    first, _, last = part.strip().partition("-")
                    numbers.extend(range(int(first), int(last or first) + 1))
            except ValueError:
                raise problem from None
            return tuple(numbers)
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise problem


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
