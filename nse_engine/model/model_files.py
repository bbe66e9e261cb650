"""Reading a model's files from disk: its tokenizer, and a GGUF file's de-quantized weights.

Both loading (a folder or .gguf the user names) and the built-in models' one-time conversion
(default_model.py) read files through here, so neither needs the other.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gguf
import nse_engine  # noqa: F401  (sets the offline flags before transformers is imported)
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from nse_engine.errors import InsufficientMemoryError, ModelLoadError
from nse_engine.model.devices import dtype_name, free_memory_bytes
from nse_engine.progress import JobControl

# Activations, the tokenizer and allocator slack on top of the weights themselves.
_OVERHEAD_BYTES = 512 * 2**20
_OVERHEAD_FACTOR = 1.15


def first_line(exc: BaseException) -> str:
    """The first line of an error from a library, for a one-line message."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def check_memory(weight_bytes: int, device: torch.device, dtype: torch.dtype, name: str) -> None:
    """Refuse early, with numbers, when the model cannot fit in the free memory of `device`."""
    needed = int(weight_bytes * _OVERHEAD_FACTOR) + _OVERHEAD_BYTES
    free = free_memory_bytes(device)
    if needed > free:
        raise InsufficientMemoryError(
            f"Loading {name} in {dtype_name(dtype)} needs about {needed / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB is free on {device}. Close other programs, choose a smaller "
            "model, or a lower-precision dtype."
        )


def load_tokenizer(
    path: Path, trust_remote_code: bool = False, gguf_file: str | None = None
) -> PreTrainedTokenizerBase:
    """The tokenizer of a folder (or of one GGUF file in it), with EOS as its pad token when it has none."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, local_files_only=True, trust_remote_code=trust_remote_code, gguf_file=gguf_file
        )
    except Exception as exc:  # tokenizers raise many unrelated types for a broken folder
        raise ModelLoadError(f"The tokenizer of {path.name} cannot be loaded: {first_line(exc)}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def read_gguf(
    file: Path, device: torch.device, dtype: torch.dtype, control: JobControl
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A GGUF file's weights de-quantized to `dtype` (checked to fit on `device`), and its tokenizer."""
    with _gguf_parsed_once():
        weight_bytes = gguf_parameter_count(file) * torch.empty((), dtype=dtype).element_size()
        check_memory(weight_bytes, device, dtype, file.name)
        control.report("loading model", 1, 3, "loading tokenizer")
        tokenizer = load_tokenizer(file.parent, gguf_file=file.name)
        control.report("loading model", 2, 3, "de-quantizing GGUF weights")
        try:
            model = AutoModelForCausalLM.from_pretrained(
                file.parent, gguf_file=file.name, dtype=dtype, local_files_only=True, use_kernels=False
            )
        except (OSError, ValueError, RuntimeError, KeyError, ImportError) as exc:
            raise ModelLoadError(f"The GGUF file {file.name} cannot be loaded: {first_line(exc)}") from exc
    clear_gguf_marker(model)
    return model, tokenizer


def gguf_parameter_count(file: Path) -> int:
    """Number of weights in a GGUF file, read from its tensor table."""
    try:
        reader = gguf.GGUFReader(file)
    except Exception as exc:  # gguf raises ValueError/struct errors/IndexError for bad files
        raise ModelLoadError(f"{file.name} is not a readable GGUF file: {first_line(exc)}") from exc
    return int(sum(int(t.n_elements) for t in reader.tensors))


_parse_lock = threading.Lock()  # the block below swaps two module attributes: one reader at a time


@contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """Within this block each GGUF file's metadata is parsed once and gguf's tensor-name map built
    once per (architecture, layers).

    transformers parses the file anew for the tokenizer, the config and the weights, and builds
    the name map again for each of the model's ~400 submodules: two thirds of reading the default
    model (research log 2026-12-08). Both are pure functions of a read-only file and of their
    arguments, and transformers looks them up on the gguf module at each call, so memoized
    stand-ins there are used by all three reads.
    """
    with _parse_lock:
        real_reader, real_name_map = gguf.GGUFReader, gguf.get_tensor_name_map
        readers: dict[tuple[str, str], gguf.GGUFReader] = {}

        def reader(path: str | Path, mode: str = "r") -> gguf.GGUFReader:
            key = (str(Path(path).resolve()), mode)
            if key not in readers:
                readers[key] = real_reader(path, mode)
            return readers[key]

        gguf.GGUFReader = reader  # type: ignore[misc, assignment]
        gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(real_name_map)
        try:
            yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = real_reader, real_name_map


def clear_gguf_marker(model: PreTrainedModel) -> None:
    """A GGUF-loaded model is plain de-quantized weights; drop the marker that blocks saving."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
