"""``ephys bench``: the protocol, a run on a prepared dataset, the leaderboard, bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ephys_core.cli import app
from ephys_core.errors import ConfigError
from ephys_data.synthetic import write_example_dataset
from ephys_eval.bench.protocol import BUDGETS, PROTOCOL, Budget, protocol_hash
from ephys_eval.bench.runner import run_benchmark

TINY = Budget(
    name="tiny",
    subjects=0,
    seconds=0.0,
    batch_size=4,
    steps={"gpt2meg": 8},
    models={
        "gpt2meg": {
            "d_model": 16,
            "n_layers": 1,
            "n_heads": 2,
            "context_length": 64,
            "dropout": 0.0,
            "embedding": "amplitude",
            "head": "mixture",
        },
    },
    evaluation={
        "max_windows": 8,
        "n_contexts": 4,
        "horizon_seconds": 0.5,
        "fit_segments": 4,
        "fit_seconds": 4.0,
        "ar_max_order": 4,
        "var_orders": [1, 2],
        "n_boot": 20,
    },
    window_seconds=0.5,
    warmup_steps=2,
)


def test_the_protocol_is_versioned_and_hashed():
    assert PROTOCOL == "ephys-forecast/4"
    assert set(BUDGETS) == {"smoke", "standard"}
    hashes = {protocol_hash(b) for b in BUDGETS.values()}
    assert len(hashes) == 2  # the budget is part of what is hashed
    assert protocol_hash(BUDGETS["smoke"]) == protocol_hash(BUDGETS["smoke"])
    for budget in BUDGETS.values():
        assert {"gpt2meg", "stgpt2meg", "wavenet"} <= set(budget.models)


def test_a_run_on_a_prepared_dataset_writes_the_leaderboard(tmp_path):
    data = write_example_dataset(tmp_path / "prepared", seconds=10)
    result = run_benchmark(tmp_path / "bench", budget=TINY, data=data)
    board = json.loads((tmp_path / "bench" / "leaderboard.json").read_text())
    assert board == json.loads(json.dumps(result.leaderboard, default=str))
    assert board["protocol"] == PROTOCOL and board["protocol_hash"] == protocol_hash(TINY)
    assert board["data"]["source"] == str(data) and len(board["data"]["hash"]) == 16
    rows = {r["forecaster"]: r for r in board["rows"]}
    assert {"gpt2meg", "ar", "var", "persistence", "token_frequency", "real_other"} == set(rows)
    model = rows["gpt2meg"]
    assert model["kind"] == "model" and model["steps"] == 8 and model["params"] > 0
    assert model["train_tokens_per_s"] > 0 and model["generation"]["tokens_per_s"] > 0
    assert 0 < model["matmul_peak_fraction"] < 1
    best = min(
        (r for r in board["rows"] if r["kind"] == "baseline"),
        key=lambda r: r["cross_entropy"]["value"],
    )
    difference = model["minus_best_baseline"]["value"]
    assert difference == pytest.approx(
        model["cross_entropy"]["value"] - best["cross_entropy"]["value"], abs=1e-4
    )
    values = [r["cross_entropy"]["value"] for r in board["rows"] if r["cross_entropy"]]
    assert values == sorted(values)  # best first
    markdown = (tmp_path / "bench" / "leaderboard.md").read_text()
    assert (
        PROTOCOL in markdown
        and board["data"]["hash"] in markdown
        and "| gpt2meg | model |" in markdown
    )
    assert (tmp_path / "bench" / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "bench" / "reports" / "gpt2meg" / "report.md").is_file()

    # a second run reuses the finished training run and only evaluates again
    run_dir = tmp_path / "bench" / "runs" / "bench-tiny-gpt2meg"
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    stamp = (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    lines: list[str] = []
    again = run_benchmark(tmp_path / "bench", budget=TINY, data=data, progress=lines.append)
    assert any("reusing the finished training run" in line for line in lines)
    assert (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == checkpoints
    rows_again = {r["forecaster"]: r for r in again.leaderboard["rows"]}
    assert rows_again["gpt2meg"]["train_seconds"] == model["train_seconds"]
    assert rows_again["gpt2meg"]["cross_entropy"] == model["cross_entropy"]
    # another evaluation re-scores the same training run
    lines.clear()
    rescored = Budget(**{**TINY.__dict__, "evaluation": {**TINY.evaluation, "n_boot": 30}})
    run_benchmark(tmp_path / "bench", budget=rescored, data=data, progress=lines.append)
    assert any("reusing the finished training run" in line for line in lines)
    assert (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp
    # another configuration (or --retrain) trains again
    lines.clear()
    longer = Budget(**{**TINY.__dict__, "steps": {"gpt2meg": 10}})
    retrained = run_benchmark(tmp_path / "bench", budget=longer, data=data, progress=lines.append)
    assert any(line.startswith("training gpt2meg (10 steps)") for line in lines)
    assert {r["forecaster"]: r for r in retrained.leaderboard["rows"]}["gpt2meg"]["steps"] == 10


def test_bad_budgets_and_models_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown budget 'huge'"):
        run_benchmark(tmp_path, budget="huge")
    with pytest.raises(ConfigError, match="configures .*gpt2meg, .*stgpt2meg, wavenet, not lstm"):
        run_benchmark(tmp_path, budget="smoke", models=["lstm"])
    result = CliRunner().invoke(app, ["bench", "--budget", "huge", "--out", str(tmp_path)])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "unknown budget 'huge'" in line


def test_tokenizer_rows_score_each_tokenizers_codes_in_signal_space(tmp_path):
    data = write_example_dataset(tmp_path / "prepared", seconds=12)
    budget = Budget(
        **{
            **TINY.__dict__,
            "name": "tinytok",
            "tokenizers": {
                "quantile": {"name": "quantile", "params": {"n_codes": 32}},
                "brainomni": {
                    "name": "brainomni",
                    "dataset": "reconstruction",
                    "dataset_params": {},
                    "model": {
                        "channels": 4,
                        "dim": 8,
                        "n_latents": 2,
                        "levels": 2,
                        "codebook_size": 16,
                        "strides": [2, 2],
                        "n_heads": 2,
                    },
                    "steps": 4,
                    "window_seconds": 0.32,
                },
            },
            "code_forecaster": {
                "name": "wavenet",
                "params": {
                    "residual_channels": 8,
                    "gate_channels": 8,
                    "skip_channels": 8,
                    "head_channels": 8,
                    "dilations": [1, 2],
                    "embedding_dim": 4,
                    "embedding": "table",
                    "head": "softmax",
                },
                "steps": 4,
                "window_steps": 20,
            },
            "code_models": {
                "brainomni_forecast": {
                    "tokenizer": "brainomni",
                    "params": {"d_model": 8, "n_layers": 1, "n_heads": 2, "context_length": 32},
                    "steps": 4,
                },
            },
            "decoded_evaluation": {
                "n_contexts": 4,
                "horizon_seconds": 0.4,
                "fit_segments": 4,
                "fit_seconds": 4.0,
                "ar_max_order": 4,
                "var_orders": [1, 2],
                "n_boot": 20,
            },
        }
    )
    with pytest.raises(ConfigError, match="configures quantile, brainomni, not bpe"):
        run_benchmark(tmp_path / "bench", budget=budget, data=data, tokenizers=["bpe"])
    lines: list[str] = []
    result = run_benchmark(tmp_path / "bench", budget=budget, data=data, progress=lines.append)
    rows = {(r["tokenizer"], r["forecaster"]): r for r in result.leaderboard["tokenizer_rows"]}
    assert set(rows) == {
        ("quantile", "wavenet"),
        ("brainomni", "wavenet"),
        ("brainomni", "brainomni_forecast"),  # a code model on brainomni's codes only
    }
    quantile, learned = rows["quantile", "wavenet"], rows["brainomni", "wavenet"]
    coded = rows["brainomni", "brainomni_forecast"]
    assert coded["codes"] == learned["codes"] and coded["identity"] == learned["identity"]
    assert quantile["codes"].startswith("8 rows x 32 codes, 1 sample")
    assert learned["codes"].startswith("4 rows x 16 codes, 4 sample")  # 2 levels x 2 latents
    for row in rows.values():
        assert set(row["signal"]) == {"model", "decoded_real", "ar", "var", "real_other"}
        assert row["signal"]["model"]["psd_log_distance"]["value"] >= 0
        assert row["cross_entropy"]["value"] > 0
        assert row["generation"]["codes_per_s"] > 0
    assert learned["tokenizer_train_seconds"] > 0 == quantile["tokenizer_train_seconds"]
    markdown = (tmp_path / "bench" / "leaderboard.md").read_text()
    assert "## Forecasting on each tokenizer's codes, in signal space" in markdown
    assert "| quantile | wavenet | 8 rows x 32 codes" in markdown
    assert "| brainomni | brainomni_forecast | 4 rows" in markdown
    assert (tmp_path / "bench" / "reports" / "codes-brainomni" / "report.md").is_file()
    assert "(reports/codes-brainomni-brainomni_forecast/report.md)" in markdown
    # a second run reuses every training run: the tokenizer's and the forecasters'
    lines.clear()
    run_benchmark(tmp_path / "bench", budget=budget, data=data, progress=lines.append)
    assert not any(line.startswith("training") for line in lines), lines
    assert sum("reusing the finished training run" in line for line in lines) == 5
