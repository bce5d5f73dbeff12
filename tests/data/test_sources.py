"""Data-set discovery: names keep subject, session and task; presets filter and annotate."""

from __future__ import annotations

import pytest

from ephys_core import get_registry
from ephys_core.errors import ConfigError


def discover(name, workdir, **params):
    component = get_registry("sources").load(name)
    config = component.example_config(workdir).model_copy(update=params)
    return component(config).discover()


def test_folder_names_are_unique_and_carry_bids_entities(tmp_path):
    refs = discover("folder", tmp_path)
    names = [r.name for r in refs]
    assert names == ["sub-01__sub-01_task-rest_meg", "sub-02_task-rest_meg"]
    assert [r.subject for r in refs] == ["01", "02"] and {r.task for r in refs} == {"rest"}
    (tmp_path / "recordings" / "sub-02_task-rest_meg.fif").touch()  # same stem, other format
    names = [r.name for r in discover("folder", tmp_path)]
    assert "sub-02_task-rest_meg_ds" in names and "sub-02_task-rest_meg_fif" in names


def test_folder_include_exclude_and_errors(tmp_path):
    refs = discover("folder", tmp_path, exclude=["*.ds"])
    assert [r.name for r in refs] == ["sub-01__sub-01_task-rest_meg"]
    with pytest.raises(ConfigError, match="does not exist"):
        discover("folder", tmp_path, root=tmp_path / "nope")


def test_omega_keeps_rest_and_drops_noise(tmp_path):
    refs = discover("omega", tmp_path)
    assert [r.name for r in refs] == [
        "sub-0001_ses-01_task-rest_run-01",
        "sub-0002_ses-01_task-rest_run-01",
    ]
    assert all(r.dataset == "omega" and r.path.suffix == ".ds" for r in refs)


def test_mous_names_the_condition_preset_of_each_task(tmp_path):
    refs = {r.name: r for r in discover("mous", tmp_path)}
    assert refs["sub-A2002_task-auditory"].metadata == {"condition_preset": "mous_auditory"}
    assert refs["sub-V1001_task-visual"].metadata == {"condition_preset": "mous_visual"}
    assert refs["sub-A2002_task-rest"].metadata == {"condition_preset": "rest"}


def test_bids_filters_and_camcan(tmp_path):
    assert [r.subject for r in discover("bids", tmp_path, subjects=["02"])] == ["02"]
    assert [r.task for r in discover("camcan", tmp_path / "c")] == ["rest", "smt"]
    with pytest.raises(ConfigError, match="not a BIDS data set"):
        (tmp_path / "empty").mkdir()
        discover("bids", tmp_path, root=tmp_path / "empty")
