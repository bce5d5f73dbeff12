"""Every real recording keeps one dataset row per data channel, with that channel's data."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from ephys_core import get_registry
from ephys_data.pipeline import preprocess

pytestmark = pytest.mark.realdata

RECORDINGS = [
    "ctf/testdata_ctf_short_discontinuous.ds",
    "ctf/test_ctf_comp_raw.fif",
    "megin/141027_cropped_90Hz_raw.fif",
    "kit/MQKIT_125_2sec.con",
    "kit/test.sqd",
    "eeg/test.edf",
    "eeg/test.bdf",
    "eeg/test.vhdr",
]
NOT_DATA = {"stim", "misc"}


@pytest.mark.parametrize("relative", RECORDINGS)
def test_every_data_channel_gets_its_own_row(recordings, tmp_path, relative):
    path = recordings / relative
    raw = mne.io.read_raw(path, verbose="error")
    types = sorted(set(raw.get_channel_types()) - NOT_DATA)  # includes ref_meg where present
    n_data = sum(t in types for t in raw.get_channel_types())
    stages = [
        {"name": "read", "params": {"picks": types, "checksum": False}},
        {"name": "resample", "params": {"sfreq": 100.0}},
        {"name": "normalize"},
    ]
    summary = preprocess({"name": "folder", "params": {"root": str(path)}}, stages, tmp_path)
    assert summary.count("done") == 1, summary.results
    builder = get_registry("datasets").create(
        "continuous_next_step",
        {
            "roots": [str(tmp_path)],
            "window_seconds": 0.2,
            "split": {"strategy": "time", "val": 0.0, "test": 0.0},
        },
    )
    (entry,) = builder.catalog.entries
    session = entry.session
    assert session.meta["n_channels"] == n_data
    assert builder.layout.n_channels == n_data  # no two channels share a row
    rows = builder.layout.index[entry.key]
    assert sorted(rows.tolist()) == list(range(n_data))
    assert builder.data_spec()["ch_types"] == [
        session.meta["ch_types"][i] for i in np.argsort(rows)
    ]
    dataset = builder.build("train")
    assert len(dataset) > 0
    for i in (0, len(dataset) - 1):
        x, _, _ = dataset.window(i)
        start = int(dataset.index.start[i])
        window = np.asarray(session.data[:, start : start + dataset.index.length])
        np.testing.assert_array_equal(x[rows], window)  # each channel's samples in its own row
        live = np.abs(window).sum(axis=1) > 0
        # distinct channels carry distinct data, so a mix-up would show
        assert len({row.tobytes() for row in window[live]}) == int(live.sum())
