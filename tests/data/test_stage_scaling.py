"""`normalize` never amplifies a flat channel; `mulaw` refuses what it cannot encode."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.scaling import FLAT_FLOOR, MuLaw, Normalize, flat_channels


def signal(scales, units, n_times=2000, seed=0, types="mag"):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((len(scales), n_times)) * np.asarray(scales)[:, None] + 1e-11
    names = [f"C{i}" for i in range(len(scales))]
    return Recording.from_array(data, 100.0, names, types, units=tuple(units))


@pytest.mark.parametrize("method", ["robust", "standard"])
def test_a_channel_below_the_physical_floor_is_zeroed_not_amplified(method, caplog):
    # C1: what band-pass filtering a constant leaves (float residue), far below 1e-16 T
    rec = signal([1e-12, 1e-27, 2e-12, 1e-12], ["T"] * 4)
    with caplog.at_level(logging.WARNING, logger="ephys"):
        out = Normalize(Normalize.Config(method=method))(rec)
    (transform,) = out.transforms
    assert transform["flat"] == ["C1"]
    assert (out.data[1] == 0).all() and transform["scale"][1] == 1.0
    live = out.data[[0, 2, 3]]
    spread = np.subtract(*np.percentile(live, [75, 25], axis=1)) if method == "robust" else None
    if method == "robust":
        np.testing.assert_allclose(spread, 1.0, rtol=1e-4)
    else:
        np.testing.assert_allclose(live.std(axis=1), 1.0, rtol=1e-4)
    assert "flat channel(s) set to zero" in caplog.text and "C1" in caplog.text


def test_floors_are_per_unit_and_quiet_live_channels_stay():
    # a gradiometer at 1e-13 T/m is live; an EEG channel at 1e-10 V is below its floor
    rec = signal([1e-11, 1e-13, 1e-5, 1e-10], ["T/m", "T/m", "V", "V"], types="misc")
    rec = rec.replace(ch_types=("grad", "grad", "eeg", "eeg"))
    assert flat_channels(rec, rec.data).tolist() == [False, False, False, True]
    assert FLAT_FLOOR == {"T": 1e-16, "T/m": 1e-14, "V": 1e-9}


def test_a_channel_negligible_against_its_neighbours_is_flat_in_any_unit():
    rec = signal([1.0, 1.0, 1e-9, 1e-3, 1.0], [""] * 5, types="parcel")
    flat = flat_channels(rec, rec.data)
    assert flat.tolist() == [False, False, True, False, False]  # 1e-3 is quiet, not flat
    out = Normalize(Normalize.Config())(rec)
    assert out.transforms[0]["flat"] == ["C2"] and (out.data[2] == 0).all()
    assert np.abs(out.data[3]).max() > 1  # the quiet channel is still scaled up


def test_after_another_transform_only_the_relative_rule_applies():
    rec = signal([1e-20, 1e-20], ["T", "T"]).replace(
        transforms=({"kind": "clip", "k": 5.0, "low": [0, 0], "high": [1, 1]},)
    )
    assert not flat_channels(rec, rec.data).any()  # not physical units any more


def test_a_recording_of_flat_channels_fails():
    rec = signal([1e-30, 0.0, 1e-25], ["T"] * 3)
    with pytest.raises(RecordingError, match="every channel is flat"):
        Normalize(Normalize.Config())(rec)


def test_non_finite_channels_are_not_called_flat_and_mulaw_refuses_them():
    rec = signal([1e-12, 1e-12], ["T", "T"])
    data = rec.data.copy()
    data[0, 5] = np.nan
    rec = rec.with_data(data)
    assert not flat_channels(rec, data).any()
    out = Normalize(Normalize.Config())(rec)
    # only the broken sample stays non-finite: the statistics leave it out
    assert np.flatnonzero(~np.isfinite(out.data)).tolist() == [5]
    clean = Normalize(Normalize.Config())(signal([1e-12, 1e-12], ["T", "T"]))
    np.testing.assert_array_equal(out.data[1], clean.data[1])
    assert abs(float(np.nanmedian(out.data[0]))) < 1e-6 and out.transforms[0]["flat"] == []
    with pytest.raises(RecordingError, match="1 sample.s. are NaN or infinite"):
        MuLaw(MuLaw.Config())(rec)
