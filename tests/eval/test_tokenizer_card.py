"""Tokenizer cards: reconstruction, PSD error, bit rate, codebook use and throughput."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from ephys_core.errors import ConfigError
from ephys_data.encoding import fit_tokenizer
from ephys_data.synthetic import write_example_dataset
from ephys_eval.tokenizer_card import tokenizer_card
from ephys_tokenizers.mulaw_tokenizer import MuLawTokenizer


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_example_dataset(tmp_path_factory.mktemp("card") / "prepared", seconds=20)


def test_card_of_a_fitted_quantile_tokenizer(prepared, tmp_path):
    artifact = fit_tokenizer("quantile", {"n_codes": 256}, [prepared], tmp_path / "q")
    card = tokenizer_card(artifact, [prepared], tmp_path / "card", segments=4, seconds=5)
    s = card.summary
    assert s["data"]["split"] == "test" and s["data"]["n_channels"] == 8
    assert s["tokenizer"]["identity"] == artifact.identity
    # 256 equal-mass bins keep almost everything of a smooth signal
    assert s["reconstruction"]["pcc"] > 0.99
    assert 99 < s["reconstruction"]["variance_explained_percent"] <= 100
    assert all(v["mean_abs"] < 0.5 for v in s["psd_error_db"].values())
    # one code per channel and sample, eight bits each
    assert s["codes"]["codes_per_second"] == pytest.approx(8 * 100)
    assert s["codes"]["bits_per_second"] == pytest.approx(8 * 100 * 8)
    assert s["codes"]["usage"] > 0.9 and s["codes"]["perplexity"] > 200
    assert s["throughput"]["encode_samples_per_s"] > 0
    for name in ("card.md", "card.json", "reconstruction.png", "psd.png"):
        assert (tmp_path / "card" / name).stat().st_size > 0
    assert json.loads((tmp_path / "card" / "card.json").read_text()) == s
    text = card.markdown.read_text()
    assert "variance explained" in text and artifact.identity in text


def test_coarser_codes_score_worse(prepared, tmp_path):
    scores = []
    for n in (8, 256):
        artifact = fit_tokenizer("quantile", {"n_codes": n}, [prepared], tmp_path / f"q{n}")
        card = tokenizer_card(artifact, [prepared], tmp_path / f"c{n}", segments=2, seconds=4)
        scores.append(card.summary)
    coarse, fine = scores
    assert coarse["reconstruction"]["pcc"] < fine["reconstruction"]["pcc"]
    assert coarse["codes"]["bits_per_second"] == pytest.approx(
        fine["codes"]["bits_per_second"] * 3 / 8
    )


def test_a_tokenizer_fitted_on_other_channels_is_refused(prepared, tmp_path):
    other = write_example_dataset(tmp_path / "other", n_channels=4, seconds=5)
    artifact = fit_tokenizer("quantile", {"n_codes": 16}, [other], tmp_path / "q4")
    with pytest.raises(ConfigError, match="8 channels; the tokenizer was fitted on 4"):
        tokenizer_card(artifact, [prepared], tmp_path / "card", segments=1, seconds=1)


def test_the_command_takes_a_folder_or_a_fixed_tokenizer_by_name(prepared, tmp_path):
    # imported here, not at collection: the CLI tests read command help from the source of
    # modules that are not imported yet
    from ephys_eval.cli.tokenizer import app

    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "card",
            "mulaw",
            "-p",
            "amplitude=5",
            "--data",
            str(prepared),
            "--out",
            str(tmp_path / "mulaw"),
            "--segments",
            "2",
            "--seconds",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "mulaw" / "card.json").read_text())
    mulaw = MuLawTokenizer(MuLawTokenizer.Config(amplitude=5.0))
    assert summary["codes"]["bits_per_second"] == pytest.approx(8 * 100 * math.log2(256))
    assert summary["tokenizer"]["params"] == mulaw.config.model_dump(mode="json")
    refused = runner.invoke(
        app, ["card", "quantile", "--data", str(prepared), "--out", str(tmp_path / "x")]
    )
    assert refused.exit_code != 0 and "must be fitted first" in refused.output


def test_a_per_channel_tokenizer_is_scored_on_chosen_channels(prepared, tmp_path):
    artifact = fit_tokenizer("quantile", {"n_codes": 64}, [prepared], tmp_path / "q")
    card = tokenizer_card(
        artifact, [prepared], tmp_path / "card", segments=2, seconds=2, channels=["CH006", "CH001"]
    )
    assert card.summary["data"]["n_channels"] == 2
    assert card.summary["codes"]["bits_per_second"] == pytest.approx(2 * 100 * 6)
    with pytest.raises(ConfigError, match="CH999"):
        tokenizer_card(
            artifact, [prepared], tmp_path / "x", segments=1, seconds=1, channels=["CH999"]
        )
