"""``ephys eval``: a trained checkpoint gives summary.json, report.md and plots."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ephys_core import get_hooks, get_registry
from ephys_core.cli import app
from ephys_core.components import Component, ComponentConfig
from ephys_core.config import load_config
from ephys_core.hookspecs import ReportSection, hookimpl
from ephys_core.reporting import SummaryTable
from ephys_data.synthetic import write_example_dataset
from ephys_models.training import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    root = write_example_dataset(tmp / "prepared", seconds=10)
    config = {
        "name": "tiny",
        "out_dir": str(tmp / "runs"),
        "data": {
            "dataset": {
                "name": "mulaw_next_step",
                "params": {
                    "roots": [str(root)],
                    "window_seconds": 0.5,
                    "split": {"val": 0.2, "test": 0.2},
                },
            },
            "batch_size": 8,
        },
        "model": {
            "name": "gpt2meg",
            "params": {
                "d_model": 16,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 64,
                "dropout": 0.0,
            },
        },
        "loss": "cross_entropy",
        "trainer": {
            "max_steps": 30,
            "val_check_interval": 15,
            "check_val_every_n_epoch": None,
            "log_every_n_steps": 5,
            "progress_bar": False,
        },
        "optim": {"lr": 3e-3},
        "evaluation": {
            "split": "val",
            "evaluators": [
                {
                    "name": "token_forecast",
                    "params": {
                        "max_windows": 16,
                        "n_contexts": 4,
                        "horizon_seconds": 0.5,
                        "fit_segments": 8,
                        "fit_seconds": 4.0,
                        "ar_max_order": 8,
                        "var_orders": [1, 2, 4],
                        "n_boot": 50,
                    },
                }
            ],
        },
    }
    path = tmp / "run.yaml"
    path.write_text(json.dumps(config))
    result = train(load_config(path))
    return path, result


def test_eval_writes_summary_report_and_plots(trained, tmp_path):
    path, result = trained

    class Section:
        @hookimpl
        def ephys_report_sections(self, summary, run_dir):
            return ReportSection("extra analysis", body="from a plugin", data={"k": 1})

    plugin = Section()
    get_hooks().register(plugin)
    try:
        out = CliRunner().invoke(app, ["eval", str(path), "--out", str(tmp_path / "report")])
    finally:
        get_hooks().unregister(plugin)
    assert out.exit_code == 0, out.output
    for name in ("model", "ar", "var", "persistence", "token_frequency", "real_other"):
        assert name in out.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["schema"] == "ephys-eval/1" and summary["model"] == "gpt2meg"
    assert summary["checkpoint"] == str(result.best_checkpoint)
    result_ = summary["evaluators"]["token_forecast"]
    tf = result_["teacher_forced"]
    assert tf["split"] == "val" and tf["n_windows"] == 16 and tf["window"] == 50
    assert set(tf["forecasters"]) == {"model", "ar", "var", "persistence", "token_frequency"}
    for scores in tf["forecasters"].values():
        ce = scores["cross_entropy"]
        assert ce["low"] <= ce["value"] <= ce["high"] and ce["n"] == 16
    best = tf["best_baseline"]
    difference = tf["model_minus_best"]["value"]
    ce = {n: v["cross_entropy"]["value"] for n, v in tf["forecasters"].items()}
    assert difference == pytest.approx(ce["model"] - ce[best], abs=1e-5)
    assert best == min((n for n in ce if n != "model"), key=ce.get)
    assert result_["baselines"]["ar"]["kind"] == "ar" and result_["baselines"]["var"]["order"] >= 1
    rollout = result_["rollout"]
    assert rollout["n_contexts"] == 4 and rollout["horizon_seconds"] == 0.5
    metrics = rollout["metrics"]
    names = {"model", "ar", "var", "persistence", "token_frequency", "real_other"}
    for key in ("psd_log_distance", "covariance_distance", "coherence_distance"):
        assert set(metrics[key]) == names
    assert set(metrics["band_power_divergence"]["model"]) >= {"alpha", "beta", "mean"}
    divergence = rollout["divergence"]
    assert len(divergence["null"]["value"]) == len(divergence["horizon_seconds"]) == 50
    assert set(divergence["time_to_divergence"]) == names - {"real_other"}
    for figure in result_["figures"].values():
        assert (tmp_path / "report" / figure).read_bytes()[:4] == b"\x89PNG"
    assert summary["sections"] == {"extra analysis": {"k": 1}}
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| model |" in report and "extra analysis" in report and "![psd](psd.png)" in report
    assert "best baseline" in report and "real_other" in report


def test_trained_model_beats_token_frequency(trained, tmp_path):
    from ephys_eval.runner import evaluate

    path, result = trained
    summary = evaluate(result.best_checkpoint, load_config(path), tmp_path).summary
    tf = summary["evaluators"]["token_forecast"]["teacher_forced"]["forecasters"]
    assert tf["model"]["cross_entropy"]["high"] < tf["token_frequency"]["cross_entropy"]["low"]


def test_eval_needs_a_checkpoint(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"name: none\nout_dir: {tmp_path}\ndata: {{dataset: mulaw_next_step}}\n")
    out = CliRunner().invoke(app, ["eval", str(config)])
    assert out.exit_code == 1 and "no checkpoint" in out.output


class ToyEvaluator(Component):
    """Renders its own report section and summary table."""

    class Config(ComponentConfig):
        pass

    outputs = ("score",)

    def __init__(self, config):
        self.config = config

    def evaluate(self, context):
        return {"score": 0.25, "windows": len(context.datasets["val"])}

    @staticmethod
    def report_section(result):
        return ReportSection("toy", body=f"the toy scored **{result['score']}**")

    @staticmethod
    def summary_tables(result):
        return [SummaryTable("toy scores", ["metric", "value"], [("score", result["score"])])]

    @classmethod
    def example_context(cls, workdir):
        raise NotImplementedError


class PlainEvaluator(ToyEvaluator):
    """Renders nothing itself: the report and the command line use their defaults."""

    report_section = None
    summary_tables = None

    def evaluate(self, context):
        return {"plain": {"value": 7.5}}


def test_an_evaluator_renders_its_own_report_section_and_summary_table(trained, tmp_path):
    """A new evaluator reaches report.md and the terminal without any report or CLI code."""
    path, _ = trained
    registry = get_registry("evaluators")
    undo = [registry.register("toy", ToyEvaluator), registry.register("plain_toy", PlainEvaluator)]
    try:
        out = CliRunner().invoke(
            app,
            [
                "eval",
                str(path),
                "--out",
                str(tmp_path / "report"),
                "-o",
                "evaluation.evaluators=[{name: toy}, {name: plain_toy}]",
            ],
        )
    finally:
        for step in undo:
            step()
    assert out.exit_code == 0, out.output
    assert "toy scores" in out.output and "0.25" in out.output
    assert "plain.value" in out.output and "7.5" in out.output
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## toy" in report and "the toy scored **0.25**" in report
    assert "## plain_toy" in report and '"value": 7.5' in report
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["evaluators"]["toy"]["score"] == 0.25


def test_eval_writes_into_the_run_folder_by_default(trained):
    path, result = trained
    out = CliRunner().invoke(app, ["eval", "--ckpt", str(result.best_checkpoint)])
    assert out.exit_code == 0, out.output
    assert (result.run_dir / "eval" / "report.md").is_file()


def test_a_checkpoint_outside_a_run_needs_out(trained, tmp_path):
    import shutil

    _, result = trained
    loose = tmp_path / "loose.ckpt"
    shutil.copy(result.best_checkpoint, loose)
    out = CliRunner().invoke(app, ["eval", "--ckpt", str(loose)])
    assert out.exit_code == 1
    (line,) = out.output.strip().splitlines()
    assert "not in a run folder" in line and "--out" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loose.ckpt"]  # nothing written
