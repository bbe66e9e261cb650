"""The NSE authors' own MEMIT_seq on our model and dev facts, scored by our evaluation (issue 21's fidelity check).

Runs `apply_memit_seq_to_model` from a checkout of github.com/jianghoucheng/NSE (tested at
9ef65736) on the first N dev facts in rounds, with the authors' settings adapted to the default
model (layers 4–8, v_lr 1.0, λ 1600, 25 steps, their 5 generated context prefixes of 10
tokens), then scores the edited model exactly as `nse bench` does. Their C is swapped for ours
(same definition, E[k kᵀ] on general text), so the two runs differ only in the editing code.

Their code is copied into a temporary folder and patched only where it cannot run here; each
patch names the text it replaces and stops the run if a checkout lacks it:
- "cuda" is hard-coded: the model's device instead;
- `apply_memit_seq_to_model` does not pass `cache_c` (the earlier edits' key products) on to
  `execute_memit`, which then indexes None: passed on;
- since transformers 4.54 a decoder layer returns its hidden state as a tensor, not a tuple,
  so `cur_out[0]` / `.output[0]` take the first prompt instead of the batch: the hidden state;
- `generate_fast` (their context prefixes) passes the attention mask of the new token only,
  which transformers 5 does not read as covering the cached tokens: the prefixes came out as
  punctuation ("The--,-- and,-,."); the mask up to the new token instead;
- their `rome.layer_stats` (statistics over Wikipedia from the hub) is not imported: `get_cov`
  returns our C.
Their index arithmetic assumes right padding (GPT-2's and Llama 3's default), so their tokenizer
copy pads right.

    python -m research.authors_memit_seq --nse-repo PATH/NSE --cases PATH/facts_dev.jsonl \
        --facts 200 --batch-size 100 --json research/results/authors_memit_seq_200x100.json
"""

from __future__ import annotations

import argparse
import atexit
import copy
import importlib
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

from nse_engine.bench import before_editing, read_cases, subject_spelling
from nse_engine.evaluation.counterfact import evaluate
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import LoadedModel, load_model
from nse_engine.provenance import write_result
from nse_engine.stats.second_moment import layer_stats
from research.dev_edits import add_cases_argument, parse_arguments

log = logging.getLogger(__name__)

AUTHORS_SETTINGS = {  # hparams/MEMIT/Llama3-8B.json with issue 21's adaptation to SmolLM2 (30 layers)
    "layers": [4, 5, 6, 7, 8], "clamp_norm_factor": 0.75, "layer_selection": "all", "fact_token": "subject_last",
    "v_num_grad_steps": 25, "v_lr": 1.0, "v_loss_layer": 29, "v_weight_decay": 0.5, "kl_factor": 0.0625,
    "mom2_adjustment": True, "mom2_update_weight": 1600, "rewrite_module_tmp": "model.layers.{}.mlp.down_proj",
    "layer_module_tmp": "model.layers.{}", "mlp_module_tmp": "model.layers.{}.mlp",
    "attn_module_tmp": "model.layers.{}.self_attn", "ln_f_module": "model.norm", "lm_head_module": "lm_head",
    "mom2_dataset": "wikipedia", "mom2_n_samples": 100000, "mom2_dtype": "float32",
}
HIDDEN = "def _hidden(out):\n    return out[0] if isinstance(out, tuple) else out\n\n\n"
PATCHES: dict[str, list[tuple[str, str]]] = {  # file -> (text in the authors' code, replacement)
    "memit/memit_seq_main.py": [
        ('"cuda"', "DEVICE"),
        (".cuda()", ".to(DEVICE)"),
        ("execute_memit(model, tok, requests, hparams, cache_template=cache_template)",
         "execute_memit(model, tok, requests, hparams, cache_template=cache_template, cache_c=cache_c)"),
        ("from rome.layer_stats import layer_stats\n", ""),
    ],
    "memit/compute_z.py": [
        ('"cuda"', "DEVICE"),
        ("cur_out[0]", "_hidden(cur_out)"),
        ("output=tr[hparams.layer_module_tmp.format(loss_layer)].output[0]",
         "output=_hidden(tr[hparams.layer_module_tmp.format(loss_layer)].output)"),
        ("def compute_z(", HIDDEN + "def compute_z("),
    ],
    "util/generate.py": [
        ("attention_mask=attention_mask[:, cur_context],", "attention_mask=attention_mask[:, : cur_context.stop],"),
    ],
}


def authors_memit_seq(source: Path, device: torch.device) -> types.ModuleType:
    """Their `memit.memit_seq_main`, copied from the checkout `source` and patched (module docstring)."""
    folder = Path(tempfile.mkdtemp(prefix="authors-nse-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for package in ("memit", "rome", "util"):
        shutil.copytree(source / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
        (folder / package / "__init__.py").write_text("")  # theirs import every method, with its dependencies
    for name, patches in PATCHES.items():
        path = folder / name
        text = path.read_text()
        for old, new in patches:
            if old not in text:
                raise SystemExit(f"{source / name} lacks {old!r}: not the tested commit of the authors' code")
            text = text.replace(old, new)
        path.write_text(f"DEVICE = {str(device)!r}\n" + text)
    sys.modules["util.globals"] = types.ModuleType("util.globals")  # reads their globals.yml; nothing used here
    sys.path.insert(0, str(folder))
    return importlib.import_module("memit.memit_seq_main")


def as_request(index: int, case: EditRequest) -> dict:
    return {"case_id": index, "prompt": case.prompt, "subject": case.subject, "target_new": {"str": case.target_new}}


def checkout_commit(source: Path) -> str | None:
    done = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def edit_in_rounds(loaded: LoadedModel, memit_seq: types.ModuleType, cases: list[EditRequest],
                   batch_size: int, moments: dict[int, torch.Tensor]) -> list[float]:
    """Edit `cases` in rounds with the authors' code; the seconds each round took."""
    hparams = memit_seq.MEMITHyperParams(model_name=loaded.name, **AUTHORS_SETTINGS)
    by_module = {hparams.rewrite_module_tmp.format(layer): moment.float() for layer, moment in moments.items()}
    memit_seq.get_cov = lambda model, tok, layer_name, *args, **kwargs: by_module[layer_name].to(loaded.device)
    tok = copy.deepcopy(loaded.tokenizer)
    tok.padding_side = "right"
    d_ff = next(iter(moments.values())).shape[0]
    cache_c = torch.zeros(len(hparams.layers), d_ff, d_ff)  # their Kp Kpᵀ per layer, grown each round
    torch.manual_seed(0)  # their context prefixes are sampled once, on the first round
    seconds = []
    for start in range(0, len(cases), batch_size):
        requests = [as_request(start + i, c) for i, c in enumerate(cases[start : start + batch_size])]
        began = time.perf_counter()
        _, cache_c = memit_seq.apply_memit_seq_to_model(loaded.model, tok, requests, hparams, cache_c=cache_c)
        seconds.append(time.perf_counter() - began)
        log.info("round %d: %d facts in %.0f s", len(seconds), len(requests), seconds[-1])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nse-repo", type=Path, required=True, help="a checkout of github.com/jianghoucheng/NSE")
    parser.add_argument("--model", default="default")
    add_cases_argument(parser)
    parser.add_argument("--facts", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--json", type=Path, required=True)
    args = parse_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    loaded = load_model(args.model)
    cases = read_cases(args.cases, args.facts)
    stats = layer_stats(loaded, find_edit_points(loaded.model), AUTHORS_SETTINGS["layers"])
    moments = {layer: s.moment for layer, s in stats.items()}
    memit_seq = authors_memit_seq(args.nse_repo, loaded.device)
    pre = before_editing(loaded, cases)
    seconds = edit_in_rounds(loaded, memit_seq, cases, args.batch_size, moments)
    post = evaluate(loaded, cases, generation=True, fluency=True, edited_prompts={c.text for c in cases}, chat=True)
    write_result(args.json, {
        "model": loaded.name, "cases": len(cases), "batch_size": args.batch_size,
        "authors_code": {"repository": "github.com/jianghoucheng/NSE", "commit": checkout_commit(args.nse_repo),
                         "function": "memit.memit_seq_main.apply_memit_seq_to_model", "settings": AUTHORS_SETTINGS},
        **post.to_dict(with_facts=False), **subject_spelling(pre, post),
        "unedited": pre.to_dict(with_facts=False),
        "seconds_per_edit": sum(seconds) / len(cases), "seconds_per_round": seconds,
        "device": str(loaded.device), "torch_threads": torch.get_num_threads(),
    })


if __name__ == "__main__":
    main()
