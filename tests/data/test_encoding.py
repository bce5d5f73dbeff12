"""Code datasets: a tokenizer fitted on the training split, datasets encoded once (resumably),
decoded back, and read by ``tokens_next_step`` through the tokenizer they carry."""

from __future__ import annotations

import numpy as np
import pytest

from ephys_core.errors import ConfigError
from ephys_core.plugins import get_registry
from ephys_data.datasets.catalog import Catalog
from ephys_data.datasets.splits import SplitConfig, split_sessions
from ephys_data.encoding import (
    TOKENIZER_FOLDER,
    decode_dataset,
    encode_dataset,
    fit_tokenizer,
    training_sample,
)
from ephys_data.format import PreparedDataset
from ephys_data.synthetic import write_example_dataset
from ephys_models.training.compat import data_spec_problems
from ephys_tokenizers.artifact import load_tokenizer

SPLIT = {"strategy": "subject", "val": 0.2, "test": 0.2, "seed": 1}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_example_dataset(tmp_path_factory.mktemp("enc") / "prepared", seconds=10)


@pytest.fixture(scope="module")
def quantile(prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "quantile"
    return fit_tokenizer("quantile", {"n_codes": 64}, [prepared], out, split=SPLIT)


@pytest.fixture(scope="module")
def codes(prepared, quantile, tmp_path_factory):
    out = tmp_path_factory.mktemp("codes") / "codes"
    encode_dataset(quantile, [prepared], out)
    return out


def _tokens(root, **params):
    return get_registry("datasets").create(
        "tokens_next_step",
        {"roots": [str(root)], "window_seconds": 0.5, "split": SPLIT, **params},
    )


def test_the_tokenizer_sees_only_the_training_split(prepared, quantile):
    train = split_sessions(Catalog([prepared]).entries, SplitConfig(**SPLIT))["train"]
    facts = quantile.fitted_on
    assert facts["train_sessions"] == len(train) == 3
    assert facts["train_seconds"] == pytest.approx(30.0)
    assert facts["split"]["seed"] == 1
    sample, _ = training_sample([prepared], SPLIT, max_samples=10**9)
    every_train_sample = np.concatenate([e.session.data for e in train], axis=1)
    assert np.allclose(np.sort(sample, axis=1), np.sort(every_train_sample, axis=1))
    other = fit_tokenizer(
        "quantile",
        {"n_codes": 64},
        [prepared],
        quantile.folder.parent / "other",
        split={**SPLIT, "seed": 2},
    )
    assert other.identity != quantile.identity


def test_codes_are_the_tokenizers_and_carry_its_identity(prepared, quantile, codes):
    assert load_tokenizer(codes / TOKENIZER_FOLDER).identity == quantile.identity
    source = {s.name: s for s in PreparedDataset(prepared).sessions()}
    for session in PreparedDataset(codes).sessions():
        expected = quantile.tokenizer.encode(np.asarray(source[session.name].data))
        assert np.array_equal(session.data, expected)
        assert session.data.dtype == np.uint8
        (entry,) = [t for t in session.meta["transforms"] if t["kind"] == "tokenizer"]
        assert entry["identity"] == quantile.identity
        assert session.meta["ch_names"] == source[session.name].meta["ch_names"]
    assert PreparedDataset(codes).manifest["tokenizer"]["identity"] == quantile.identity


def test_encoding_resumes_and_refuses_another_tokenizer(prepared, quantile, tmp_path):
    out = tmp_path / "codes"
    first = encode_dataset(quantile, [prepared], out)
    assert len(first.done) == 5 and not first.skipped
    again = encode_dataset(quantile, [prepared], out)
    assert not again.done and len(again.skipped) == 5
    victim = sorted((out / "sessions").iterdir())[1]
    (victim / "meta.json").unlink()  # as if the run had been killed while writing it
    resumed = encode_dataset(quantile, [prepared], out)
    assert resumed.done == [victim.name]
    other = fit_tokenizer("quantile", {"n_codes": 16}, [prepared], tmp_path / "q16", split=SPLIT)
    with pytest.raises(ConfigError, match="holds codes of tokenizer quantile"):
        encode_dataset(other, [prepared], out)
    with pytest.raises(ConfigError, match="hold codes already"):
        encode_dataset(quantile, [out], tmp_path / "twice")


def test_decoding_returns_signals_within_the_quantisation_error(prepared, codes, tmp_path):
    decoded = decode_dataset(codes, tmp_path / "decoded")
    assert len(decoded.done) == 5
    source = {s.name: np.asarray(s.data) for s in PreparedDataset(prepared).sessions()}
    for session in PreparedDataset(tmp_path / "decoded").sessions():
        x, y = source[session.name], np.asarray(session.data)
        assert session.data.dtype == np.float32
        assert np.linalg.norm(y - x) / np.linalg.norm(x) < 0.1
        assert not [t for t in session.meta["transforms"] if t["kind"] == "tokenizer"]


def test_token_datasets_decode_through_the_carried_tokenizer(quantile, codes):
    builder = _tokens(codes, channels=["CH005", "CH002"])
    spec = builder.data_spec()
    assert spec["vocab_size"] == 64 and spec["codes"] == "quantile"
    assert spec["tokenizer"]["identity"] == quantile.identity
    (segment,) = builder.segments("test", 30, 1)
    assert segment.x.shape == (2, 30)
    signal = builder.to_signal(segment.x, segment)
    rows = [5, 2]  # the channels' places in the sessions the tokenizer was fitted on
    expected = quantile.tokenizer.channels(rows).decode(segment.x.astype(np.int64))
    assert np.allclose(signal, expected)
    edges = builder.bin_edges(segment)
    assert edges.shape == (2, 65)
    assert np.allclose(edges, quantile.tokenizer.bin_edges()[rows])
    assert np.array_equal(builder.encode_signal(signal, segment), segment.x.astype(np.int64))


def test_a_model_trained_on_one_tokenizers_codes_refuses_another(prepared, codes, tmp_path):
    stored = _tokens(codes).data_spec()
    other = fit_tokenizer(
        "quantile", {"n_codes": 64}, [prepared], tmp_path / "q", split={**SPLIT, "seed": 3}
    )
    other_codes = tmp_path / "other-codes"
    encode_dataset(other, [prepared], other_codes)
    problems = data_spec_problems(stored, _tokens(other_codes).data_spec())
    assert len(problems) == 1 and problems[0].startswith("tokenizer")
    assert not data_spec_problems(stored, _tokens(codes).data_spec())


def test_a_code_dataset_whose_tokenizer_folder_was_swapped_is_refused(prepared, codes, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(codes, copy)
    shutil.rmtree(copy / TOKENIZER_FOLDER)
    other = fit_tokenizer(
        "quantile", {"n_codes": 64}, [prepared], copy / TOKENIZER_FOLDER, split={**SPLIT, "seed": 4}
    )
    assert other.identity
    with pytest.raises(ConfigError, match="but the sessions were encoded by"):
        _tokens(copy)
