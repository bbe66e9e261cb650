"""One line of sha256 per observable result of editing a tiny model with each method: a refactoring
that must not change behaviour leaves this script's output byte-identical.

    .venv/bin/python scripts/behaviour_digest.py > /tmp/digest.txt

For nse, memit and alphaedit: the settings the method derives from the tiny test settings with
every switch on (derive.for_method) and its memory estimate; then, the way `nse edit` does it
(Workspace.open with those settings cached, run_queue), three rounds of two facts on the tiny
random Llama of tests/tiny.py (as a chat model), hashing the edited weights after each round,
the state file (its tensors and metadata, timings left out) and the stored batches (settings
and metrics), the weights after the project is reopened, and after its last batch is undone.
Runs on the CPU in one thread, in temporary data and cache folders; takes about 15 seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
_TMP = Path(tempfile.mkdtemp(prefix="nse-digest-"))
os.environ["NSE_DATA_DIR"] = str(_TMP / "data")
os.environ["NSE_CACHE_DIR"] = str(_TMP / "cache")
os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from nse_engine.editing import derive  # noqa: E402
from nse_engine.editing.memory_estimate import EditingLoad  # noqa: E402
from nse_engine.editing.memory_plan import plan_memory  # noqa: E402
from nse_engine.method_names import METHODS  # noqa: E402
from nse_engine.model.architecture import find_edit_points  # noqa: E402
from nse_engine.model.devices import devices_holding  # noqa: E402
from nse_engine.model.placement import placed_units  # noqa: E402
from nse_engine.model.shape import shape_of  # noqa: E402
from nse_engine.workspace import Workspace  # noqa: E402
from tiny import CHAT_TEMPLATE, tiny_hparams, tiny_loaded  # noqa: E402

FACTS = derive.PROBES[:6]  # six counterfactual edits, three batches of two
BATCH = 2
# On top of the tiny test settings, so that each group of settings takes part: drifted facts pulled
# back, verification passes, the schedule, Kp's weight and layer shares, the subject repeat, the
# target stop, ENCORE's norm penalty, NAS and the chat rows (the tiny model gets a chat template).
SWITCHED_ON = dict(
    refresh_drifted=True, verify_passes=1, max_iterations=2, schedule_ramp_edits=4, schedule_start=0.5,
    earlier_edits_weight=2.0, layer_share_ratio=0.9, subject_repeat_weight=0.5, target_stop_top1=True,
    target_stop_margin=0.5, encore=True, encore_norm_weight=0.1, norm_anchoring=True, norm_anchor=3.0,
    chat_rows=True, chat_subject_weight=0.5, chat_passes=True,
)


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def weights_digest(ws: Workspace) -> str:
    points = ws.session.points
    return sha(b"".join(points.weight(l).detach().float().contiguous().numpy().tobytes() for l in ws.session.layers))


def state_digest(path: Path) -> str:
    """The state file's tensors and metadata; each round's timings (seconds_by_phase) vary run to run."""
    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata() or {})
    rounds = json.loads(metadata["rounds"])
    for record in rounds:
        record.pop("seconds_by_phase", None)
    metadata["rounds"] = json.dumps(rounds)
    tensors = load_file(str(path))
    parts = [json.dumps(metadata, sort_keys=True)] + [
        f"{name}:{sha(tensors[name].contiguous().numpy().tobytes())}" for name in sorted(tensors)
    ]
    return sha("\n".join(parts))


def batches_digest(ws: Workspace) -> str:
    """What the log keeps of each batch: method, settings (as stored), outcome, facts and metrics."""
    rows = [
        json.dumps([b.id, b.method, b.hparams, b.outcome, list(b.fact_ids), b.applied_count, b.undone,
                    repr(b.metrics), b.not_held])
        for b in ws.project.queries.batches()
    ]
    return sha("\n".join(rows))


def tiny_model():
    return tiny_loaded(chat_template=CHAT_TEMPLATE)


def method_settings(method: str):
    """The tiny test settings as the method derives them (its own loop, AlphaEdit's L2 and threshold)."""
    return derive.for_method(tiny_hparams(**SWITCHED_ON), method, alphaedit_l2=10.0, nullspace_threshold=0.02)


def memory_digest(method: str) -> str:
    loaded = tiny_model()
    points = find_edit_points(loaded.model)
    placed = placed_units(loaded.model, points)
    plan = plan_memory(shape_of(loaded.model, points), loaded.dtype, devices_holding(placed),
                       EditingLoad((1, 2), method=method), weights_map=placed)
    return sha(repr(plan.items))


def open_workspace(folder: Path, method: str) -> Workspace:
    ws = Workspace.open(tiny_model(), folder, method=method)
    ws.measure_fluency = False
    return ws


def digest_method(method: str) -> list[str]:
    hparams = method_settings(method)
    lines = [f"{method} settings {sha(json.dumps(hparams.to_dict()))}", f"{method} memory {memory_digest(method)}"]
    cache = derive._cache_file(tiny_model(), method)  # the derived settings `nse edit` would find cached
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(hparams.to_dict(), indent=2), encoding="utf-8")
    folder = _TMP / f"project-{method}"
    ws = open_workspace(folder, method)
    with ws.closing():
        ids = ws.project.queue.queue_facts(FACTS)
        for n, changes in enumerate(ws.run_queue(ids, BATCH), start=1):
            lines.append(f"{method} round {n} weights {weights_digest(ws)} applied {len(changes.applied_fact_ids)}")
        lines.append(f"{method} state {state_digest(ws.project.history.current_state_file())}")
        lines.append(f"{method} batches {batches_digest(ws)}")
    ws = open_workspace(folder, method)
    with ws.closing():
        lines.append(f"{method} reopened weights {weights_digest(ws)}")
        ws.undo_last_batch()
        lines.append(f"{method} undone weights {weights_digest(ws)}")
        lines.append(f"{method} undone state {state_digest(ws.project.history.current_state_file())}")
        lines.append(f"{method} undone batches {batches_digest(ws)}")
    return lines


def main() -> None:
    torch.set_num_threads(1)
    stdout = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # training the tiny tokenizer writes blank lines to fd 1
    try:
        lines = [line for method in METHODS for line in digest_method(method)]
    finally:
        os.dup2(stdout, 1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
