"""Windowed datasets: item semantics, layouts across sites, subsets, augmentation, mixup."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ephys_core.errors import ConfigError
from ephys_core import get_registry
from ephys_data.format import write_manifest, write_session
from ephys_data.recording import Recording
from ephys_data.synthetic import write_example_dataset


@pytest.fixture(scope="module")
def signals(tmp_path_factory):
    return write_example_dataset(tmp_path_factory.mktemp("sig") / "p", seconds=4, labels=True)


@pytest.fixture(scope="module")
def codes(tmp_path_factory):
    return write_example_dataset(tmp_path_factory.mktemp("codes") / "p", seconds=4, codes=True)


def build(name, root, **params):
    params.setdefault("window_seconds", 0.5)
    return get_registry("datasets").create(
        name, {"roots": [str(r) for r in np.atleast_1d(root)], **params}
    )


def test_next_step_targets_are_the_inputs_one_sample_later(signals, codes):
    for name, root in (
        ("continuous_next_step", signals),
        ("tokens_next_step", codes),
        ("mulaw_next_step", signals),
    ):
        builder = build(name, root)
        dataset = builder.build("val")
        x, y = dataset[0]
        raw, _, _ = dataset.window(0)
        assert x.shape == y.shape == (8, 50)
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
        assert builder.data_spec()["n_times"] == 50


def test_windows_cover_sessions_with_overlap(signals):
    builder = build("continuous_next_step", signals, window_seconds=1.0, overlap_seconds=0.5)
    dataset = builder.build("train")
    per_session = (400 - 101) // 50 + 1  # 4 s at 100 Hz, 100 + 1 samples, step 50
    assert len(dataset) == per_session * len(builder.splits["train"])
    first, second = dataset.window(0)[0], dataset.window(1)[0]
    np.testing.assert_array_equal(first[:, 50:], second[:, :51])


def test_token_vocabulary_and_tokenizer_reach_the_data_spec(signals, codes):
    assert build("tokens_next_step", codes).data_spec()["vocab_size"] == 256
    spec = build("mulaw_next_step", signals, mu=127, amplitude=3.0).data_spec()
    assert spec["vocab_size"] == 128
    assert spec["tokenizer"] == {"name": "mulaw", "params": {"mu": 127, "amplitude": 3.0}}


def test_wrong_kind_of_data_is_a_clear_error(signals, codes):
    with pytest.raises(ConfigError, match="mu-law codes"):
        build("tokens_next_step", signals)
    with pytest.raises(ConfigError, match="signals"):
        build("continuous_next_step", codes)


def _site(root, names, offset, sfreq=100.0, dataset="site"):
    rng = np.random.default_rng(offset)
    theta = np.linspace(0, 2 * np.pi, 12, endpoint=False)[offset : offset + len(names)]
    pos = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], 1) * 0.07
    for s in range(3):
        rec = Recording.from_array(
            rng.standard_normal((len(names), 300)).astype(np.float32),
            sfreq,
            names,
            "mag",
            name=f"sub-{s}",
            subject=str(s),
            dataset=dataset,
            pos_3d=pos,
            pos_2d=(pos[:, :2] + 1) / 2,
        )
        write_session(root, rec, {})
    write_manifest(root)
    return root


def test_sites_are_unioned_on_one_layout_with_fill_and_mask(tmp_path):
    a = _site(tmp_path / "a", [f"A{i}" for i in range(6)], 0, dataset="a")
    b = _site(tmp_path / "b", [f"B{i}" for i in range(6)], 3, dataset="b")
    builder = build(
        "continuous_next_step",
        [a, b],
        fill_value=-9.0,
        mask_missing=True,
        split={"strategy": "dataset", "holdout": "b"},
    )
    assert builder.data_spec()["n_channels"] == 9  # channels 3-5 are the same sensors
    assert builder.layout.ch_names[3:6] == ["A3", "A4", "A5"]
    x, target = builder.build("val")[0]  # a site-b window
    assert (x[:3] == -9.0).all() and not (x[3:] == -9.0).any()
    np.testing.assert_array_equal(target["mask"], [False] * 3 + [True] * 6)
    assert {e.dataset for e in builder.splits["train"]} == {"a"}


def test_roots_must_share_a_sampling_rate(tmp_path):
    a = _site(tmp_path / "a", ["A0", "A1"], 0)
    b = _site(tmp_path / "b", ["A0", "A1"], 0, sfreq=200.0, dataset="b")
    with pytest.raises(ConfigError, match="different sampling frequencies"):
        build("continuous_next_step", [a, b])


def test_channel_subsets_by_name_and_region(signals):
    builder = build("continuous_next_step", signals, channels=["CH002", "CH005"])
    assert builder.build("val")[0][0].shape == (2, 50)
    assert builder.data_spec()["ch_names"] == ["CH002", "CH005"]
    posterior = build("continuous_next_step", signals, channels="posterior")
    y = np.asarray(posterior.data_spec()["pos_2d"])[:, 1]
    assert 0 < len(y) < 8 and (y <= 1 / 3).all()
    with pytest.raises(ConfigError, match="not in the layout"):
        build("continuous_next_step", signals, channels=["nope"])


def test_labels_and_subjects_travel_beside_the_signal(signals):
    builder = build("mulaw_next_step", signals, labels=True, subjects=True)
    inputs, targets = builder.build("train")[0]
    assert set(inputs) == {"x", "condition", "subject"}
    assert inputs["x"].shape == (8, 50) and inputs["condition"].shape == (50,)
    assert targets.shape == (8, 50)  # labels never enter the signal rows
    assert set(np.unique(inputs["condition"])) <= {0, 1, 2}
    assert builder.data_spec()["n_conditions"] == 2 and builder.data_spec()["n_subjects"] == 5


def test_augmentations_apply_to_training_only(signals):
    plain = build("continuous_next_step", signals)
    augmented = build(
        "continuous_next_step",
        signals,
        augmentations=[
            {"name": "time_mask", "num_blocks": 1, "block_samples": 10, "value": 0.0},
            {"name": "additive_noise", "sigma": 0.5},
        ],
    )
    np.testing.assert_array_equal(plain.build("val")[0][0], augmented.build("val")[0][0])
    assert not np.array_equal(plain.build("train")[0][0], augmented.build("train")[0][0])
    with pytest.raises(ConfigError, match="sensor images only"):
        build("continuous_next_step", signals, augmentations=[{"name": "spatial_warp"}])


def test_mixup_blends_signals_and_quantises_afterwards(signals):
    from ephys_core.config import MixupSection

    builder = build("mulaw_next_step", signals)
    collate = builder.collate_fn(MixupSection(alpha=0.4, prob=1.0))
    items = [builder.build("train")[i] for i in range(4)]
    inputs, targets = collate(items)
    assert inputs.dtype == torch.int64 and inputs.shape == (4, 8, 50)
    plain = torch.as_tensor(np.stack([builder.build("val")[0][0]]))
    assert plain.dtype == torch.int64  # validation items are still tokens
    continuous = build("continuous_next_step", signals)
    x, y = continuous.collate_fn(MixupSection(alpha=0.4))(
        [continuous.build("train")[i] for i in range(4)]
    )
    raw = torch.as_tensor(np.stack([continuous.build("train")[i][0] for i in range(4)]))
    assert x.dtype == torch.float32 and not torch.equal(x, raw)
    with pytest.raises(ConfigError, match="mu-law codes"):
        build(
            "tokens_next_step", write_example_dataset(signals.parent / "c2", codes=True, seconds=2)
        ).collate_fn(MixupSection())


def test_mixup_of_class_targets_gives_soft_one_hot():
    from ephys_data.collate import mixup_collate

    items = [(np.full((2, 3), float(i), np.float32), np.int64(i)) for i in range(4)]
    x, y = mixup_collate(1.0, num_classes=4, seed=0)(items)
    assert y.shape == (4, 4) and torch.allclose(y.sum(1), torch.ones(4))
    assert (y.max(1).values >= 0.5).all()


def test_sensor_images_invert_exactly(signals):
    builder = build("sensor_image", signals, image_size=8, target="reconstruction")
    image, _ = builder.build("val")[0]
    raw, _, _ = builder.build("val").window(0)
    assert image.shape == (8, 8, 50)
    np.testing.assert_array_equal(builder.grid.to_channels(image), raw)
    spec = builder.data_spec()["grid"]
    np.testing.assert_array_equal(image[spec["rows"], spec["cols"]], raw)


def test_interpolated_images_recover_their_channels(signals):
    builder = build("interpolated_image", signals, image_size=16)
    frames, _ = builder.build("val")[0]
    raw, _, _ = builder.build("val").window(0)
    assert frames.shape == (1, 50, 16, 16) and np.isfinite(frames).all()
    back = builder.interpolator.to_channels(frames[0])
    np.testing.assert_allclose(back, raw, atol=1e-3 * np.abs(raw).max())


def test_reconstruction_geometry(signals):
    inputs, target = build("reconstruction", signals, geometry="3d").build("val")[0]
    assert inputs["pos"].shape == (8, 6) and inputs["ch_type"].shape == (8,)
    np.testing.assert_array_equal(inputs["x"], target)
