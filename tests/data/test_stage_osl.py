"""The `osl` stage: OSL-ephys chains in their own syntax, and its absence."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from ephys_core.errors import MissingDependencyError
from ephys_data.examples import example_recording
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.bads import BadChannels
from ephys_data.stages.io import Read
from ephys_data.stages.osl import OSLChain

CHAIN = """
preproc:
  - filter: {l_freq: 1, h_freq: 40, method: iir, iir_params: {order: 5, ftype: butter}}
  - notch_filter: {freqs: 60 120}
  - resample: {sfreq: 200}
"""


def block_osl(monkeypatch):
    for name in ("osl_ephys", "osl_ephys.preprocessing", "osl_ephys.preprocessing.osl_wrappers"):
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_osl_ephys_says_how_to_install_it(monkeypatch, tmp_path):
    block_osl(monkeypatch)
    stage = OSLChain(OSLChain.Config())
    with pytest.raises(MissingDependencyError, match=r'pip install "ephys-data\[osl\]"'):
        stage(example_recording())
    from ephys_core.testing._common import NotApplicable

    with pytest.raises(NotApplicable, match="osl-ephys is not installed"):
        stage.example_input(tmp_path)
    with pytest.raises(MissingDependencyError, match=r"ephys-data\[osl\]"):
        BadChannels(BadChannels.Config(method="osl"))(example_recording())


def test_chain_syntax_is_checked_without_osl_ephys(monkeypatch):
    block_osl(monkeypatch)
    for bad, message in [
        ("preproc: [", "not valid YAML"),
        ("filter: {l_freq: 1}", "needs a `preproc:` list"),
        ({"preproc": [{"filter": {}, "resample": {}}]}, "one key"),
        ({"preproc": [{"filter": 3}]}, "must be a mapping"),
    ]:
        with pytest.raises(ValidationError, match=message):
            OSLChain.Config(config=bad)
    stage = OSLChain(OSLChain.Config(config=CHAIN))
    assert stage.output_sfreq(1200.0) == 200.0
    assert stage.preserves_duration
    cropping = OSLChain(OSLChain.Config(config={"preproc": [{"crop": {"tmax": 1}}]}))
    assert not cropping.preserves_duration and cropping.output_sfreq(90.0) == 90.0


@pytest.mark.realdata
def test_real_chain_matches_the_same_steps_in_mne(recordings):
    rec = Read(Read.Config())(
        Recording.unloaded(recordings / "ctf/testdata_ctf_short_discontinuous.ds")
    )
    out = OSLChain(OSLChain.Config(config=CHAIN))(rec)
    assert out.sfreq == 200.0 and out.ch_names == rec.ch_names
    raw = rec.raw.copy()
    raw.filter(1, 40, method="iir", iir_params={"order": 5, "ftype": "butter"}, verbose="error")
    raw.notch_filter(np.array([60.0, 120.0]), verbose="error")
    raw.resample(200, verbose="error")
    np.testing.assert_allclose(out.get_data(), raw.get_data(), rtol=0, atol=1e-20)
    step = out.provenance["steps"][-1]
    assert step["methods"] == ["filter", "notch_filter", "resample"]
    assert step["chain"] == yaml.safe_load(CHAIN)
    # the mapping form runs the same chain
    again = OSLChain(OSLChain.Config(config=yaml.safe_load(CHAIN)))(rec)
    np.testing.assert_array_equal(again.get_data(), out.get_data())


@pytest.mark.realdata
def test_osl_bad_channel_steps(recordings):
    rec = Read(Read.Config())(
        Recording.unloaded(recordings / "ctf/testdata_ctf_short_discontinuous.ds")
    )
    data = rec.get_data().copy()
    noisy = rec.ch_names[40]
    data[40] += 50 * data[40].std() * np.random.default_rng(0).standard_normal(data.shape[1])
    raw = rec.raw.copy()
    raw._data[:] = data
    damaged = Recording.from_raw(raw, name="damaged")
    chain = "preproc:\n  - bad_channels: {picks: mag, significance_level: 0.1}\n"
    out = OSLChain(OSLChain.Config(config=chain))(damaged)
    assert noisy in out.bads
    native = BadChannels(BadChannels.Config(method="osl", action="mark"))(damaged)
    assert noisy in native.provenance["steps"][-1]["detected"]["osl"]


def test_unknown_method_and_failing_step():
    rec = example_recording()
    with pytest.raises(RecordingError, match="no preprocessing method 'frobnicate'"):
        OSLChain(OSLChain.Config(config={"preproc": [{"frobnicate": {}}]}))(rec)
    with pytest.raises(RecordingError, match=r"preproc\[0\] 'filter' failed"):
        OSLChain(OSLChain.Config(config={"preproc": [{"filter": {"l_freq": 500}}]}))(rec)
