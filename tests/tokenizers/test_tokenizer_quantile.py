"""The quantile tokenizer and tokenizer folders (artifacts with an identity)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ephys_tokenizers.artifact import (
    TokenizerArtifactError,
    describe_tokenizer,
    load_tokenizer,
    save_tokenizer,
)
from ephys_tokenizers.mulaw_tokenizer import MuLawTokenizer
from ephys_tokenizers.quantile import QuantileTokenizer


def _signal(seed=0, channels=3, samples=20_000):
    rng = np.random.default_rng(seed)
    scales = np.array([1.0, 1e3, 1e-12])[:channels, None]
    return rng.standard_t(5, (channels, samples)) * scales


def _fitted(n_codes=32, seed=0):
    return QuantileTokenizer(QuantileTokenizer.Config(n_codes=n_codes)).fit(_signal(seed))


def test_codes_share_the_training_samples_equally_per_channel():
    x = _signal()
    codes = _fitted(32).encode(x)
    for channel in codes:
        counts = np.bincount(channel, minlength=32)
        assert counts.min() > 0.9 * len(channel) / 32
        assert counts.max() < 1.1 * len(channel) / 32


def test_each_channel_has_its_own_bins_whatever_its_scale():
    x = _signal()
    same = np.stack([x[0], x[0] * 1e3, x[0] * 1e-12])
    tokenizer = QuantileTokenizer(QuantileTokenizer.Config(n_codes=16)).fit(same)
    codes = tokenizer.encode(same)
    assert np.array_equal(codes[0], codes[1]) and np.array_equal(codes[0], codes[2])


def test_codes_are_the_bins_of_bin_edges_and_decode_inside_them():
    tokenizer = _fitted(32)
    x = _signal(seed=1)
    codes = tokenizer.encode(x).astype(np.int64)
    edges = tokenizer.bin_edges()
    assert (
        edges.shape == (3, 33) and np.isneginf(edges[:, 0]).all() and np.isinf(edges[:, -1]).all()
    )
    rows = np.arange(3)[:, None]
    assert (edges[rows, codes] <= x).all() and (x < edges[rows, codes + 1]).all()
    decoded = tokenizer.decode(codes).astype(np.float64)
    inner = (codes > 0) & (codes < 31)  # the outer bins are unbounded
    lo, hi = edges[rows, codes][inner], edges[rows, codes + 1][inner]
    tol = 1e-6 * np.maximum(np.abs(lo), np.abs(hi))  # decoded values are float32
    assert ((lo - tol <= decoded[inner]) & (decoded[inner] <= hi + tol)).all()


def test_more_codes_reconstruct_better():
    x = _signal(seed=2)
    errors = []
    for n in (8, 32, 128):
        tokenizer = QuantileTokenizer(QuantileTokenizer.Config(n_codes=n)).fit(_signal())
        y = tokenizer.decode(tokenizer.encode(x))
        errors.append(np.linalg.norm(y - x, axis=1) / np.linalg.norm(x, axis=1))
    assert (np.diff(np.array(errors), axis=0) < 0).all()


def test_batches_torch_and_channel_subsets():
    tokenizer = _fitted(32)
    x = _signal(seed=3)
    batch = np.stack([x, x[:, ::-1].copy()])
    codes = tokenizer.encode(batch)
    assert codes.shape == batch.shape and codes.dtype == np.uint8
    assert np.array_equal(codes[0], tokenizer.encode(x))
    as_torch = tokenizer.encode(torch.as_tensor(batch))
    assert as_torch.dtype == torch.int64 and np.array_equal(as_torch.numpy(), codes)
    assert isinstance(tokenizer.decode(as_torch), torch.Tensor)
    subset = tokenizer.channels([2, 0])
    assert np.array_equal(subset.encode(x[[2, 0]]), codes[0][[2, 0]])
    assert np.allclose(subset.decode(codes[0][[2, 0]]), tokenizer.decode(codes[0])[[2, 0]])


def test_bad_input_is_refused_clearly():
    tokenizer = QuantileTokenizer()
    with pytest.raises(RuntimeError, match="not fitted"):
        tokenizer.encode(np.zeros((3, 10)))
    tokenizer = _fitted(32)
    with pytest.raises(ValueError, match=r"fitted on 3 channels.*\(\.\.\., 3, T\)"):
        tokenizer.encode(np.zeros((4, 10)))
    bad = _signal()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        tokenizer.encode(bad)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 32\)"):
        tokenizer.decode(np.full((3, 4), 32))
    with pytest.raises(ValueError, match="one channel count"):
        QuantileTokenizer().fit([np.zeros((3, 100)), np.zeros((2, 100))])


def test_folder_round_trip_gives_the_same_codes_and_identity(tmp_path):
    tokenizer = _fitted(32)
    saved = save_tokenizer(tokenizer, "quantile", tmp_path / "tok", {"train_sha256": "abc"})
    loaded = load_tokenizer(tmp_path / "tok")
    x = _signal(seed=4)
    assert loaded.identity == saved.identity
    assert loaded.fitted_on == {"train_sha256": "abc"}
    assert np.array_equal(loaded.tokenizer.encode(x), tokenizer.encode(x))
    assert describe_tokenizer("quantile", tokenizer, {"train_sha256": "abc"}) == saved.describe()
    # other training data or another training record: another identity
    assert describe_tokenizer("quantile", _fitted(32, seed=1))["identity"] != saved.identity
    assert describe_tokenizer("quantile", tokenizer, {"train_sha256": "x"})["identity"] != (
        saved.identity
    )


def test_a_changed_folder_is_refused(tmp_path):
    folder = save_tokenizer(_fitted(16), "quantile", tmp_path / "tok").folder
    state = dict(np.load(folder / "state.npz"))
    state["centroids"] = state["centroids"] * 2
    np.savez(folder / "state.npz", **state)
    with pytest.raises(TokenizerArtifactError, match="changed after it was written"):
        load_tokenizer(folder)
    with pytest.raises(TokenizerArtifactError, match="not a tokenizer folder"):
        load_tokenizer(tmp_path)
    meta = json.loads((folder / "tokenizer.json").read_text())
    (folder / "tokenizer.json").write_text(json.dumps({**meta, "schema": "other/9"}))
    with pytest.raises(TokenizerArtifactError, match="schema"):
        load_tokenizer(folder)


def test_stateless_tokenizers_save_without_a_state_file(tmp_path):
    mulaw = MuLawTokenizer(MuLawTokenizer.Config(mu=255, amplitude=3.0))
    saved = save_tokenizer(mulaw, "mulaw", tmp_path / "mulaw")
    assert not (tmp_path / "mulaw" / "state.npz").exists()
    loaded = load_tokenizer(tmp_path / "mulaw")
    assert loaded.identity == saved.identity
    assert loaded.tokenizer.config.amplitude == 3.0
    assert np.allclose(mulaw.bin_edges()[1:-1], loaded.tokenizer.bin_edges()[1:-1])
