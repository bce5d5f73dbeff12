"""`ephys train` given `data.tokenizer`: the tokenizer exported once, the signals encoded once
into `data.codes_dir`, the model trained and evaluated on the codes; and each refusal."""

from __future__ import annotations

import pytest
import yaml
from engine_helpers import TINY_FLATGPT_RVQ, tiny_code_run, tiny_run, train_tokenizer_briefly

from ephys_core.config import load_config
from ephys_core.errors import ConfigError


def flagship_run(tokenizer, root, out, name="flagship", dataset="tokens_next_step", **data):
    """A tiny flatgpt_rvq run on the codes `tokenizer` makes of the signals in `root`."""
    return tiny_code_run(
        root, out, name, TINY_FLATGPT_RVQ, dataset, tokenizer=str(tokenizer), **data
    )


@pytest.fixture(scope="module")
def flagship(signal_root, tmp_path_factory):
    """brainomni trained briefly, then flatgpt_rvq trained given its checkpoint."""
    from ephys_models.brainomni import BrainOmni
    from ephys_models.training import train

    tmp = tmp_path_factory.mktemp("tokenizer_data")
    train_tokenizer_briefly(
        signal_root,
        tmp / "tok",
        "reconstruction",
        {},
        "brainomni",
        BrainOmni.example_config().model_dump(),
        ("train/l1",),
    )
    ckpt = tmp / "tok" / "run" / "checkpoints" / "last.ckpt"
    config = flagship_run(ckpt, signal_root, tmp / "runs")
    result = train(load_config(config))
    return {"tmp": tmp, "ckpt": ckpt, "config": config, "result": result}


def test_training_given_a_tokenizer_checkpoint_encodes_the_signals_once(flagship, signal_root):
    from ephys_data.format import PreparedDataset
    from ephys_models.training import plan_training
    from ephys_tokenizers.artifact import load_tokenizer

    runs = flagship["tmp"] / "runs"
    (exported,) = (runs / "tokenizers").iterdir()
    artifact = load_tokenizer(exported)
    assert exported.name == f"brainomni-{artifact.identity[:12]}"
    assert artifact.fitted_on["checkpoint"] == "last.ckpt"
    codes = runs / "codes" / f"brainomni-{artifact.identity[:12]}"
    sessions = sorted(s.name for s in PreparedDataset(codes).sessions())
    assert sessions == sorted(s.name for s in PreparedDataset(signal_root).sessions())
    # the run records the tokenizer and reads the codes: eval, test and --resume do too
    stored = load_config(str(runs / "flagship" / "config.yaml"))
    assert stored.data.tokenizer == flagship["ckpt"]
    assert stored.data.codes_dir == codes
    assert stored.params("data.dataset").roots == [codes]
    params = stored.params("model")
    assert params.code_levels == 2 and params.n_channels == 2 * 3  # levels x latents

    # a second run with the same tokenizer reuses the export and the codes
    written = {p: p.stat().st_mtime_ns for p in (codes / "sessions").glob("*/*") if p.is_file()}
    assert len(written) >= 2 * len(sessions)  # each session's codes and sidecar
    plan = plan_training(load_config({**flagship["config"], "name": "again"}))
    assert not plan.codes.exported and plan.codes.codes_dir == codes
    assert plan.codes.summary.done == [] and plan.codes.summary.skipped == sessions
    assert {p: p.stat().st_mtime_ns for p in written} == written
    # resuming with the configuration it was started with, or with the one it stored
    assert plan_training(load_config(flagship["config"]), resume=True).codes.summary.done == []
    resumed = plan_training(stored, resume=True)
    assert resumed.codes is None and resumed.config.params("data.dataset").roots == [codes]


def test_the_model_trained_on_the_codes_is_evaluated_in_signal_space(flagship, tmp_path):
    from ephys_eval.runner import evaluate
    from ephys_models.training import select_checkpoint

    evaluation = evaluate(flagship["result"].last_checkpoint, None, tmp_path / "report")
    decoded = evaluation.summary["evaluators"]["decoded_forecast"]
    assert decoded["tokenizer"]["name"] == "brainomni"
    assert decoded["rollout"]["metrics"]["psd_log_distance"]["model"]["value"] >= 0
    # `ephys eval CONFIG` with the configuration the run was started with reads the codes
    path = tmp_path / "flagship.yaml"
    path.write_text(yaml.safe_dump(flagship["config"]), encoding="utf-8")
    choice = select_checkpoint(path, None)
    codes = flagship["result"].run_dir.parent / "codes"
    assert choice.config.params("data.dataset").roots[0].parent == codes


def test_a_tokenizer_folder_is_used_as_it_is(flagship, signal_root, tmp_path):
    from ephys_models.training import plan_training

    (exported,) = (flagship["tmp"] / "runs" / "tokenizers").iterdir()
    config = flagship_run(exported, signal_root, tmp_path, codes_dir=str(tmp_path / "mine"))
    plan = plan_training(load_config(config))
    assert plan.codes.codes_dir == tmp_path / "mine" and not plan.codes.exported
    assert len(plan.codes.summary.done) == 5
    assert not (tmp_path / "tokenizers").exists()


def refused(config, match):
    from ephys_models.training import plan_training

    with pytest.raises(ConfigError, match=match) as caught:
        plan_training(load_config(config))
    return caught.value


def test_the_refusals(flagship, signal_root, tmp_path):
    missing = tmp_path / "nowhere" / "last.ckpt"
    refused(flagship_run(missing, signal_root, tmp_path), r"data\.tokenizer: .* does not exist")
    not_a_tokenizer = flagship["result"].last_checkpoint  # flatgpt_rvq's
    refused(
        flagship_run(not_a_tokenizer, signal_root, tmp_path),
        "data.tokenizer: the checkpoint's model flatgpt_rvq is not a tokenizer",
    )
    refused(
        flagship_run(tmp_path, signal_root, tmp_path),
        "is not a tokenizer folder",
    )
    refused(
        flagship_run(flagship["ckpt"], signal_root, tmp_path, dataset="mulaw_next_step"),
        "the dataset mulaw_next_step does not read a tokenizer's codes",
    )
    # the roots hold codes already (another run's): encode_dataset's refusal, with its key
    runs = flagship["tmp"] / "runs"
    (codes,) = (runs / "codes").iterdir()
    error = refused(
        flagship_run(flagship["ckpt"], codes, runs, name="on_codes"),
        r"data\.dataset\.params\.roots: sessions .* hold codes already",
    )
    assert "leave data.tokenizer out to train on these codes" in str(error)
    assert [p.name for p in (runs / "codes").iterdir()] == [codes.name]
    assert not (runs / "on_codes").exists()
    with pytest.raises(ConfigError, match="codes_dir is where data.tokenizer's codes go"):
        load_config(tiny_run(signal_root, tmp_path, data={"codes_dir": "x"}))
    # the top-level section is `ephys tokenizer fit`'s; the message points to the new key
    refused(
        {**tiny_run(signal_root, tmp_path), "tokenizer": "mulaw"},
        "to train on a tokenizer's codes, give .* as data.tokenizer",
    )


def test_the_cli_names_the_missing_tokenizer(flagship, tmp_path):
    from typer.testing import CliRunner

    from ephys_core.cli import app

    path = tmp_path / "flagship.yaml"
    path.write_text(yaml.safe_dump(flagship["config"]), encoding="utf-8")
    missing = tmp_path / "none.ckpt"
    out = CliRunner().invoke(
        app,
        ["train", str(path), "-o", f"data.tokenizer={missing}", "-o", f"out_dir={tmp_path}"],
    )
    assert out.exit_code == 1, out.output
    assert "data.tokenizer:" in out.output and "does not exist" in out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flagship.yaml"]  # nothing written
