"""Windowed datasets: item semantics, layouts across sites, subsets, augmentation, mixup."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from ephys_core import get_registry
from ephys_core.errors import ConfigError
from ephys_data.datasets.layout import channel_keys
from ephys_data.format import PreparedDataset, write_manifest, write_session
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


def _grads_and_eeg(root, name, subject, coil_x=True, eeg_positions=False, seed=0):
    """A MEGIN-like session: 3 sites with a magnetometer and two planar gradiometers each
    (same position and normal, orthogonal gradient directions), plus 2 EEG channels without
    positions (all-zero rows, as MNE gives them)."""
    rng = np.random.default_rng(seed)
    sites = np.array([[0.05, 0.0, 0.05], [0.0, 0.05, 0.05], [-0.05, 0.0, 0.05]])
    normal = sites / np.linalg.norm(sites, axis=1, keepdims=True)
    names, types, pos, ori, ex = [], [], [], [], []
    for s, (p, n) in enumerate(zip(sites, normal, strict=True)):
        tangent = np.cross(n, [0.0, 0.0, 1.0]) if abs(n[2]) < 0.99 else np.array([1.0, 0, 0])
        tangent /= np.linalg.norm(tangent)
        other = np.cross(n, tangent)
        for suffix, kind, x in (
            ("1", "mag", tangent),
            ("2", "grad", tangent),
            ("3", "grad", other),
        ):
            names.append(f"MEG0{s}1{suffix}")
            types.append(kind)
            pos.append(p)
            ori.append(n)
            ex.append(x)
    for e in range(2):
        names.append(f"EEG00{e}")
        types.append("eeg")
        pos.append([0.01 * (e + 1), 0.0, 0.09] if eeg_positions else [0.0, 0.0, 0.0])
        ori.append([0.0, 0.0, 0.0])
        ex.append([0.0, 0.0, 0.0])
    units = ["T" if t == "mag" else "T/m" if t == "grad" else "V" for t in types]
    rec = Recording.from_array(
        rng.standard_normal((len(names), 300)).astype(np.float32),
        100.0,
        names,
        types,
        name=name,
        subject=subject,
        units=tuple(units),
        pos_3d=np.array(pos),
        ori_3d=np.array(ori),
        coil_x_3d=np.array(ex) if coil_x else None,
    )
    write_session(root, rec, {})
    return rec


def test_planar_gradiometers_at_one_site_and_channels_without_positions_keep_their_rows(
    tmp_path,
):
    root = tmp_path / "p"
    a = _grads_and_eeg(root, "sub-1", "1")
    _grads_and_eeg(root, "sub-2", "2", seed=1)
    write_manifest(root)
    builder = build(
        "reconstruction", root, window_seconds=1.0, geometry="3d", split={"strategy": "session"}
    )
    assert builder.layout.n_channels == 11  # 3 x (mag + 2 grads) + 2 EEG, matched across both
    for key, rows in builder.layout.index.items():
        assert sorted(rows.tolist()) == list(range(11)), key
    assert builder.layout.ch_names == list(a.ch_names)
    spec = builder.data_spec()
    assert spec["units"] == ["T", "T/m", "T/m"] * 3 + ["V", "V"]
    assert spec["ch_types"] == ["mag", "grad", "grad"] * 3 + ["eeg", "eeg"]
    # every channel's data arrives in its own row
    dataset = builder.build("train")
    for i in range(len(dataset)):
        x, _, entry = dataset.window(i)
        start = entry.span[0] + int(dataset.index.start[i])
        np.testing.assert_array_equal(x, entry.session.data[:, start : start + 100])


def test_sessions_prepared_without_gradient_directions_are_told_apart_by_name(tmp_path, caplog):
    from ephys_data.datasets.layout import ChannelLayout

    root = tmp_path / "p"
    for s in range(2):
        _grads_and_eeg(root, f"sub-{s}", str(s), coil_x=False, seed=s)
    write_manifest(root)
    sessions = [(s.name, s) for s in PreparedDataset(root).sessions()]
    with caplog.at_level(logging.WARNING, logger="ephys"):
        layout = ChannelLayout.build(sessions)
    assert layout.n_channels == 11
    assert all(len(set(rows.tolist())) == 11 for rows in layout.index.values())
    np.testing.assert_array_equal(layout.index["sub-0"], layout.index["sub-1"])
    assert "told apart by name" in caplog.text and "2 session(s)" in caplog.text


def test_a_channel_without_a_position_does_not_make_the_others_position_less(tmp_path):
    root = tmp_path / "p"
    _grads_and_eeg(root, "sub-1", "1", eeg_positions=False)
    write_manifest(root)
    builder = build("continuous_next_step", root, split={"strategy": "time"})
    keys = channel_keys(PreparedDataset(root).session("sub-1").meta)
    assert [k[1] for k in keys] == ["pos"] * 9 + ["name", "name"]
    assert builder.layout.n_channels == 11


def _with_nans(root, name, spans, n_times=400, codes=False):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((2, n_times)).astype(np.float32)
    for row, start, stop in spans:
        data[row, start:stop] = np.nan
    rec = Recording.from_array(data, 100.0, ["A", "B"], "mag", name=name, subject=name)
    write_session(root, rec, {})


def test_sessions_with_non_finite_samples_are_refused_or_their_windows_skipped(tmp_path):
    root = tmp_path / "p"
    _with_nans(root, "broken", [(1, 120, 125), (0, 300, 301)])
    _with_nans(root, "clean", [])
    write_manifest(root)
    with pytest.raises(ConfigError, match=r"1 session\(s\) hold NaN.*p/broken \(6\)") as err:
        build("continuous_next_step", root, split={"strategy": "time", "val": 0, "test": 0})
    assert "\n" not in str(err.value) and "non_finite: skip" in str(err.value)
    builder = build(
        "continuous_next_step",
        root,
        window_seconds=0.99,  # 99 + 1 samples every 99
        split={"strategy": "time", "val": 0, "test": 0},
        non_finite="skip",
    )
    train = builder.build("train")
    by_session = {}
    for s, start in zip(train.index.session, train.index.start, strict=True):
        by_session.setdefault(train.entries[s].session.name, []).append(int(start))
    assert by_session == {"broken": [0, 198], "clean": [0, 99, 198, 297]}
    assert all(np.isfinite(train[i][0]).all() for i in range(len(train)))
    spec = builder.data_spec()["non_finite"]
    assert spec == {
        "policy": "skip",
        "sessions": {"p/broken": 6},
        "windows_dropped": {"train": 2, "val": 0, "test": 0},
    }
    for segment in builder.segments("train", 150, 6):
        assert np.isfinite(segment.x).all()


def test_old_sessions_are_scanned_once_and_finite_ones_never(tmp_path, monkeypatch):
    import ephys_data.datasets.catalog as catalog

    root = tmp_path / "p"
    _with_nans(root, "broken", [(1, 10, 12)])
    _with_nans(root, "clean", [])
    _with_nans(root, "old", [])
    folder = root / "sessions" / "old"
    meta = json.loads((folder / "meta.json").read_text())
    meta["format"] = "ephys-session/1"
    del meta["meta_sha256"], meta["non_finite"]
    (folder / "meta.json").write_text(json.dumps(meta))
    write_manifest(root)
    scanned = []
    original = catalog.count_non_finite
    monkeypatch.setattr(
        catalog, "count_non_finite", lambda a: scanned.append(a.shape) or original(a)
    )
    builder = build(
        "continuous_next_step",
        root,
        split={"strategy": "time", "val": 0, "test": 0},
        non_finite="skip",
    )
    builder.data_spec()
    assert scanned == [(2, 400)]  # only the old session, once
    assert builder.non_finite == {"p/broken": 2}


def test_positions_are_read_per_channel_from_mne():
    import mne

    from ephys_data.examples import example_raw

    raw = example_raw(seconds=1.0)
    extra = mne.io.RawArray(
        np.zeros((2, raw.n_times)),
        mne.create_info(["X1", "X2"], raw.info["sfreq"], "eeg"),
        verbose="error",
    )
    raw.add_channels([extra], force_update_info=True)  # two EEG channels without a position
    rec = Recording.from_raw(raw, "partial")
    located = np.abs(rec.pos_3d).sum(axis=1) > 0
    assert located.tolist() == [True] * 32 + [False, False]
    assert (rec.pos_2d[-2:] == 0.5).all() and np.ptp(rec.pos_2d[:32], axis=0).min() > 0.5
    keys = channel_keys({"ch_types": rec.ch_types, "ch_names": rec.ch_names, "pos_3d": rec.pos_3d})
    assert [k[1] for k in keys] == ["pos"] * 32 + ["name", "name"]
    assert len(set(keys)) == 34


def test_segments_are_longer_than_windows_and_carry_the_items_side_tracks(tmp_path):
    """The SegmentSource and TokenCodec protocols evaluators use (ephys_core.protocols)."""
    from ephys_core.protocols import Segment

    root = write_example_dataset(tmp_path / "p", seconds=8, labels=True)
    builder = get_registry("datasets").create(
        "mulaw_next_step",
        {"roots": [str(root)], "window_seconds": 0.5, "labels": True, "subjects": True},
    )
    longest = builder.longest_segment("train")
    assert longest == 800  # whole sessions: 8 s at 100 Hz
    segments = builder.segments("train", 300, 4, seed=1)
    assert all(isinstance(s, Segment) and s.x.shape == (8, 300) for s in segments)
    again = builder.segments("train", 300, 4, seed=1)  # seeded
    assert [(s.session, s.start) for s in segments] == [(s.session, s.start) for s in again]
    session = builder.catalog.entries[0].session
    first = next(s for s in segments if s.entry.session is session)
    np.testing.assert_array_equal(first.x, session.data[:, first.start : first.start + 300])
    np.testing.assert_array_equal(first.labels, session.labels[first.start : first.start + 300])
    side = builder.side_inputs(segments, 100, 250)
    assert side["condition"].shape == (4, 150) and side["subject"].shape == (4,)
    np.testing.assert_array_equal(side["condition"][0], segments[0].labels[100:250])
    assert side["subject"][0] == builder.subject_ids[segments[0].entry.subject]
    codes = builder.to_tokens(first.x, first)
    assert codes.dtype == np.int64 and codes.max() < 256
    back = builder.to_signal(codes, first)
    inside = np.abs(first.x) < builder.config.amplitude
    assert np.abs(back - first.x)[inside].max() < 0.1 * builder.config.amplitude
    plain = get_registry("datasets").create(
        "mulaw_next_step", {"roots": [str(root)], "window_seconds": 0.5}
    )
    assert plain.side_inputs(plain.segments("train", 300, 2), 0, 300) == {}
