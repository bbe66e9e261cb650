"""`nse models` and `nse info`."""

from __future__ import annotations

import argparse
import json

from nse_engine.cli.progress_bar import progress_bar_control


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the built-in default model and recently used models")
    p.set_defaults(run=run_models)

    p = sub.add_parser("info", help="load a model and print its architecture and edit points")
    p.add_argument("model", help="model folder, .gguf file, or 'default'")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(run=run_info)


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--dtype", default="auto", help="auto (float32 on CPU, bf16/fp16 on GPU), float32, bfloat16, float16")
    p.add_argument("--trust-remote-code", action="store_true", help="run Python code shipped with the model")


def run_models(args: argparse.Namespace) -> int:
    from nse_engine.model.default_model import DEFAULT_MODEL_NAME, default_model_dir, is_converted
    from nse_engine.model.recent import recent_models

    state = f"converted, {default_model_dir()}" if is_converted() else "converted on first use"
    print(f"default  {DEFAULT_MODEL_NAME} (built in; {state})")
    for entry in recent_models():
        if entry["source"] == "default":
            continue
        print(f"recent   {entry['name']} ({entry['architecture']})  {entry['source']}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from nse_engine.model.architecture import find_edit_points
    from nse_engine.model.loading import load_model
    from nse_engine.model.recent import remember_model

    loaded = load_model(args.model, args.device, args.dtype, args.trust_remote_code, progress_bar_control())
    points = find_edit_points(loaded.model)
    remember_model(loaded.source, loaded.name, loaded.architecture)
    info = loaded.describe() | {"edit_points": points.describe()}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in loaded.describe().items():
        label = key.replace("_", " ")
        print(f"{label:<14}{value:,}" if isinstance(value, int) else f"{label:<14}{value}")
    print("edit points")
    for key, value in points.describe().items():
        print(f"  {key.replace('_', ' '):<24}{value}")
    return 0
