"""Amplitude-transform records and their inversion, owned by one module without import cycles."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ephys_data.recording import Recording
from ephys_data.stages.scaling import Clip, MuLaw, Normalize
from ephys_data.transforms import (
    TransformError,
    check_transform,
    invert_transform,
    mulaw_record,
    normalize_record,
    to_physical,
)


def test_the_transforms_module_imports_nothing_else_of_ephys_data():
    code = (
        "import json, sys\n"
        "import ephys_data.transforms\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ephys_data'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == ["ephys_data", "ephys_data.transforms"]


def test_recording_does_not_import_the_stages():
    code = (
        "import json, sys\n"
        "import ephys_data.recording\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('ephys_data.stages')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_stages_write_the_records_that_invert_them():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, 1000)) * 1e-12
    rec = Recording.from_array(data, 100.0, ["a", "b", "c"], "mag", units=("T",) * 3)
    normalized = Normalize(Normalize.Config(method="standard"))(rec)
    clipped = Clip(Clip.Config(k=10.0))(normalized)
    coded = MuLaw(MuLaw.Config(amplitude=10.0, mu=65535))(clipped)
    assert [t["kind"] for t in coded.transforms] == ["normalize", "clip", "mulaw"]
    assert all(check_transform(t) == t for t in coded.transforms)
    np.testing.assert_allclose(to_physical(normalized.data, normalized.transforms), data, rtol=1e-5)
    back = to_physical(coded.data, coded.transforms)
    assert np.abs(back - data).max() < 1e-3 * np.abs(data).max()


def test_unknown_or_incomplete_records_are_refused():
    rec = Recording.from_array(np.zeros((1, 5)), 10.0, ["a"])
    with pytest.raises(TransformError, match="unknown amplitude transform kind 'gain'"):
        rec.with_transform(np.ones((1, 5)), {"kind": "gain", "factor": 2})
    with pytest.raises(TransformError, match="normalize transform record lacks scale"):
        invert_transform(np.zeros((1, 5)), {"kind": "normalize", "method": "robust", "center": [0]})
    with pytest.raises(TransformError, match="no stored amplitude"):
        to_physical(np.zeros((1, 5), np.uint8), [mulaw_record(255, None)])


def test_a_flat_channel_inverts_to_its_constant():
    record = normalize_record("robust", np.array([3.0, 0.0]), np.array([1.0, 2.0]), flat=["a"])
    back = to_physical(np.array([[0.0, 0.0], [1.0, -1.0]], np.float32), [record])
    np.testing.assert_allclose(back, [[3.0, 3.0], [2.0, -2.0]])
