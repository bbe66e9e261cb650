"""`nse stats` on a tiny model folder: computes, then loads from the cache."""

import pytest

from nse_engine.cli import main
from nse_engine.cli.stats import parse_layers
from nse_engine.editing.hparams import relative_depth_layers
from nse_engine.errors import NseError
from tiny import save_model


def test_default_layers_follow_llama3_8b_depth_and_two_blocks_below_never_block_0():
    assert relative_depth_layers(32) == (2, 3, 4, 5, 6, 7, 8)
    assert relative_depth_layers(30) == (2, 3, 4, 5, 6, 7, 8)  # SmolLM2-135M
    assert relative_depth_layers(48) == (4, 5, 6, 7, 8, 9, 10, 11, 12)
    assert relative_depth_layers(12) == (1, 2, 3)  # GPT-2 small
    assert relative_depth_layers(4) == (1, 2)
    assert relative_depth_layers(2) == (1,)
    assert relative_depth_layers(1) == (0,)


def test_parse_layers():
    assert parse_layers("4,5,6") == [4, 5, 6]
    assert parse_layers("2,4-6,5") == [2, 4, 5, 6]
    with pytest.raises(NseError, match="--layers"):
        parse_layers("four")


def test_stats_command_computes_then_reuses(tmp_path, txt_corpus, capsys):
    folder = save_model("llama", tmp_path / "model")
    argv = ["stats", str(folder), "--layers", "1,2", "--tokens", "120", "--seq-len", "24",
            "--corpus", str(txt_corpus), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [row[:2] for row in rows] == [["1", "120"], ["2", "120"]]
    assert all(row[-1] == "(computed)" and row[-2].endswith(".safetensors") for row in rows)
    assert main(argv) == 0
    assert out.count("(computed)") == 2 and capsys.readouterr().out.count("(cached)") == 2


def test_stats_command_reports_a_missing_corpus(tmp_path, capsys):
    folder = save_model("llama", tmp_path / "model")
    assert main(["stats", str(folder), "--corpus", str(tmp_path / "none.txt"), "--device", "cpu"]) == 2
    assert "does not exist" in capsys.readouterr().err
