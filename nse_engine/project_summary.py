"""An open project as the app shows it, typed; torch-free, so that the app's views may import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.method_names import SWITCH_NAMES


@dataclass(frozen=True)
class ProjectSummary:
    """Where a project is, what it edits, and with which settings. Until its model is prepared
    for editing the settings are not derived yet: then only the method and the settings chosen
    when the project was created are known."""

    folder: str
    name: str
    base_model: str | None  # the source of the model the project edits
    method: str  # "nse", "memit" or "alphaedit": fixed when the project was created
    settings: NseHyperParams | None = None  # the settings in effect; None until they are derived
    chosen: Mapping[str, object] = field(default_factory=dict)  # flat settings chosen at creation, for the derived ones
    prepared: bool = True  # the model is prepared for editing (settings derived, key statistics loaded)

    @property
    def switches(self) -> dict[str, bool]:
        """The boolean settings any method can use (NAS, ENCORE), on or off: in effect, else as chosen."""
        if self.settings is not None:
            return {key: bool(self.settings.value(key)) for key in SWITCH_NAMES}
        return {key: bool(self.chosen.get(key)) for key in SWITCH_NAMES}

    @property
    def layers(self) -> tuple[int, ...] | None:
        """The edited layers: in effect, else as chosen (None: chosen while the model is prepared)."""
        if self.settings is not None:
            return self.settings.layers
        chosen = self.chosen.get("layers")
        return tuple(int(x) for x in chosen) if chosen else None  # type: ignore[union-attr]

    def known_settings(self) -> dict[str, object]:
        """The settings known now by flat name, as `NseHyperParams.to_dict` writes them: all of them
        once derived, before that the method and those chosen at creation."""
        if self.settings is not None:
            return self.settings.to_dict()
        return {"method": self.method, **self.chosen}
