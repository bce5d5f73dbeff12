"""The bpe tokenizer: merges of a sample-wise tokenizer's codes, lossless on those codes, with
a padded grid layout, its ragged form, and fitting on contiguous runs of the training split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ephys_tokenizers.artifact import load_tokenizer, save_tokenizer
from ephys_tokenizers.bpe import BPETokenizer, TokenSequence


def _signal(batch: int = 2, channels: int = 3, n: int = 4096, seed: int = 0) -> np.ndarray:
    """Slow oscillations: neighbouring samples share codes, so runs repeat and merge."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 100.0
    freqs = rng.uniform(1.0, 8.0, size=(batch, channels, 1))
    return np.sin(2 * np.pi * freqs * t) + 0.05 * rng.standard_normal((batch, channels, n))


@pytest.fixture(scope="module")
def fitted() -> BPETokenizer:
    config = BPETokenizer.Config(base_params={"n_codes": 16}, vocab_size=300, group_size=8)
    return BPETokenizer(config).fit(_signal(batch=4))


def test_decoding_is_exact_on_the_base_codes(fitted):
    x = _signal(seed=1)
    codes = fitted.encode(x)
    assert codes.shape == (2, 3 * 8, 4096 // 8)
    assert int(codes.max()) < fitted.vocab_size <= 300
    base = fitted.base
    assert np.array_equal(fitted.decode(codes), base.decode(base.encode(x)))


def test_merges_compress_the_codes(fitted):
    codes = fitted.encode(_signal(seed=2))
    used = codes != fitted.pad_id
    per_group = used.reshape(2, 3, 8, -1).sum(axis=2)
    assert per_group.min() >= 1 and per_group.max() <= 8
    assert per_group.mean() < 4  # at least two base codes per token on average
    # each group's tokens come first, padding after
    slots = used.reshape(2, 3, 8, -1)
    assert np.array_equal(slots, np.sort(slots, axis=2)[:, :, ::-1])


def test_the_ragged_form_round_trips_and_reads_step_by_step(fitted):
    grid = fitted.encode(_signal(batch=1, seed=3))[0]
    seq = fitted.sequence(grid)
    assert isinstance(seq, TokenSequence)
    assert seq.ids.size == int((grid != fitted.pad_id).sum())
    assert (seq.ids != fitted.pad_id).all()
    assert np.all(np.diff(seq.step * seq.n_channels + seq.channel) >= 0)
    assert np.array_equal(fitted.from_sequence(seq), grid)
    shuffled = TokenSequence(seq.ids[::-1], seq.channel[::-1], seq.step[::-1], 3, seq.n_steps)
    with pytest.raises(ValueError, match="reading order"):
        fitted.from_sequence(shuffled)


def test_codes_of_one_group_depend_on_its_samples_only(fitted):
    x = _signal(batch=1, seed=4)
    changed = x.copy()
    changed[..., 2000:] += 3.0
    a, b = fitted.encode(x), fitted.encode(changed)
    assert np.array_equal(a[..., : 2000 // 8], b[..., : 2000 // 8])
    assert not np.array_equal(a, b)


def test_torch_in_torch_out_and_batches(fitted):
    x = _signal(seed=5)
    codes = fitted.encode(torch.as_tensor(x, dtype=torch.float32))
    assert isinstance(codes, torch.Tensor) and codes.dtype == torch.int64
    assert np.array_equal(codes.numpy(), fitted.encode(x.astype(np.float32)))
    assert isinstance(fitted.decode(codes), torch.Tensor)
    assert np.array_equal(fitted.encode(x[:1]), fitted.encode(x)[:1])


def test_bad_input_and_foreign_codes_are_refused(fitted):
    codes = fitted.encode(_signal(batch=1, seed=6))
    with pytest.raises(ValueError, match="lie in"):
        fitted.decode(codes + fitted.vocab_size)
    broken = codes.copy()
    broken[..., 0, :] = fitted.pad_id  # the first token of every group of channel 0 dropped
    with pytest.raises(ValueError, match="do not spell 8 base codes"):
        fitted.decode(broken)
    with pytest.raises(ValueError, match="C \\* 8 rows"):
        fitted.decode(codes[..., :5, :])
    with pytest.raises(RuntimeError, match="not fitted"):
        BPETokenizer().encode(_signal())
    with pytest.raises(ValueError, match="cannot hold the padding token"):
        BPETokenizer.Config(base_params={"n_codes": 64}, vocab_size=40)
    with pytest.raises(ValueError, match="not one"):
        BPETokenizer(BPETokenizer.Config(base="bpe", base_params={}))
    with pytest.raises(ValueError, match="no whole group"):
        BPETokenizer(BPETokenizer.Config(group_size=64)).fit(_signal(n=32))


def test_a_folder_round_trip_keeps_codes_and_identity(fitted, tmp_path):
    saved = save_tokenizer(fitted, "bpe", tmp_path / "bpe", {"note": "test"})
    loaded = load_tokenizer(tmp_path / "bpe")
    assert loaded.identity == saved.identity
    x = _signal(seed=7)
    assert np.array_equal(loaded.tokenizer.encode(x), fitted.encode(x))
    assert np.array_equal(
        loaded.tokenizer.decode(fitted.encode(x)), fitted.decode(fitted.encode(x))
    )
    other = BPETokenizer(fitted.config).fit(_signal(batch=4, seed=9))
    assert save_tokenizer(other, "bpe", tmp_path / "other").identity != saved.identity


def test_fitting_on_prepared_data_reads_contiguous_runs(tmp_path):
    from ephys_data.encoding import encode_dataset, fit_tokenizer, training_sample
    from ephys_data.format import PreparedDataset
    from ephys_data.synthetic import write_example_dataset

    prepared = write_example_dataset(tmp_path / "prepared", seconds=20)
    split = {"strategy": "subject", "val": 0.2, "test": 0.2, "seed": 1}
    sample, facts = training_sample([prepared], split, max_samples=1000, segment=100)
    assert sample.shape[1] == facts["samples"] == 1000
    sessions = [np.asarray(s.data) for s in PreparedDataset(prepared).sessions()]

    def found(run):  # 100 contiguous samples of one session
        return any(
            np.array_equal(d[:, a : a + 100], run)
            for d in sessions
            for a in range(0, d.shape[1] - 99, 100)
        )

    assert all(found(run) for run in np.split(sample, 10, axis=1))
    artifact = fit_tokenizer(
        "bpe",
        {"base_params": {"n_codes": 16}, "vocab_size": 200, "group_size": 4},
        [prepared],
        tmp_path / "tok",
        split=split,
    )
    assert artifact.fitted_on["segment"] == 4 and artifact.tokenizer.vocab_size > 17
    summary = encode_dataset(artifact, [prepared], tmp_path / "codes")
    encoded = PreparedDataset(tmp_path / "codes").session(summary.done[0])
    source = PreparedDataset(prepared).session(summary.done[0])
    n_channels, n_times = source.data.shape
    assert encoded.data.shape == (n_channels * 4, n_times // 4)
    assert encoded.meta["sfreq"] == pytest.approx(source.meta["sfreq"] / 4)
    assert np.array_equal(encoded.data, artifact.tokenizer.encode(np.asarray(source.data)))
    from ephys_eval.tokenizer_card import tokenizer_card

    card = tokenizer_card(artifact, [prepared], tmp_path / "card", segments=2, seconds=4)
    codes = card.summary["codes"]
    n_channels = card.summary["data"]["n_channels"]
    assert 0 < codes["codes_per_second"] < n_channels * 100  # fewer tokens than samples
    assert codes["usage"] <= 1 and card.summary["reconstruction"]["pcc"] > 0.9
