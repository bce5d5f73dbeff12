"""decoded_forecast: rollouts on any tokenizer's codes, decoded and scored against the source
recordings in physical units."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ephys_core.errors import ConfigError
from ephys_core.plugins import get_registry
from ephys_core.protocols import EvaluationContext
from ephys_data.format import PreparedDataset
from ephys_eval.decoded_forecast import DECODED_REAL, DecodedForecast, _Sources


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return DecodedForecast.example_context(tmp_path_factory.mktemp("decoded"))


@pytest.fixture(scope="module")
def result(context):
    return DecodedForecast(DecodedForecast.example_config()).evaluate(context)


def test_real_continuations_come_from_the_source_recordings_in_physical_units(context):
    sources = _Sources(context.builder)
    (segment,) = context.builder.segments("test", 40, 1, seed=5)
    real = sources.signal(segment, 10, 40, physical=True)
    prepared = sources.signal(segment, 10, 40, physical=False)
    root = context.out_dir.parent / "prepared"
    source = PreparedDataset(root).session(segment.session.split("/", 1)[1])
    (normalize,) = [t for t in source.meta["transforms"] if t["kind"] == "normalize"]
    start = segment.start + 10
    expected = np.asarray(source.data[:, start : start + 30], dtype=np.float64)
    assert np.allclose(prepared, expected)
    scale = np.asarray(normalize["scale"])[:, None]
    center = np.asarray(normalize["center"])[:, None]
    assert np.allclose(real, expected * scale + center)
    assert sources.units == ["T"] * 8


def test_every_forecaster_is_scored_beside_the_null(result):
    metrics = result["rollout"]["metrics"]["psd_log_distance"]
    assert {"model", DECODED_REAL, "ar", "var", "real_other"} <= set(metrics)
    # the true continuation's own quantile codes, decoded, are nearly the real data
    assert metrics[DECODED_REAL]["value"] < metrics["real_other"]["value"]
    # an untrained model's rollouts are far from real
    assert metrics["model"]["value"] > metrics[DECODED_REAL]["value"]
    assert result["units"] == ["T"]
    assert result["tokenizer"]["name"] == "quantile"
    tf = result["teacher_forced"]["forecasters"]
    assert set(tf) == {"model", "token_frequency"}


def test_the_report_and_the_figures(result, context):
    section = DecodedForecast.report_section(result)
    assert "forecasts quantile codes" in section.body and DECODED_REAL in section.body
    for figure in result["figures"].values():
        assert (context.out_dir / figure).stat().st_size > 0
    json.dumps(result)  # summary.json-ready


def test_data_without_a_tokenizer_is_refused(tmp_path):
    from ephys_data.synthetic import write_example_dataset

    root = write_example_dataset(tmp_path / "mulaw", seconds=4, codes=True)
    builder = get_registry("datasets").create(
        "tokens_next_step", {"roots": [str(root)], "window_seconds": 0.3}
    )
    context = EvaluationContext(
        model=None, datasets={}, out_dir=tmp_path, data_spec=builder.data_spec(), builder=builder
    )
    with pytest.raises(ConfigError, match="carries no tokenizer"):
        DecodedForecast(DecodedForecast.example_config()).evaluate(context)


def test_a_source_changed_after_encoding_is_refused(context, tmp_path):
    import shutil

    root = context.out_dir.parent
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    # the codes point at their source sessions by path: re-point them at the copy, then
    # change one source sidecar
    for meta_path in (copy / "codes" / "sessions").glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        source = meta["provenance"]["encoded_from"].replace(str(root), str(copy))
        meta["provenance"]["encoded_from"] = source
        from ephys_data.format import meta_digest

        meta.pop("meta_sha256")
        meta["meta_sha256"] = meta_digest(meta)
        meta_path.write_text(json.dumps(meta))
    from ephys_data.format import write_manifest

    write_manifest(copy / "codes")
    victim = sorted((copy / "prepared" / "sessions").glob("*/meta.json"))[0]
    meta = json.loads(victim.read_text())
    meta["subject"] = "someone-else"
    from ephys_data.format import meta_digest

    meta.pop("meta_sha256")
    meta["meta_sha256"] = meta_digest(meta)
    victim.write_text(json.dumps(meta))
    builder = get_registry("datasets").create(
        "tokens_next_step",
        {"roots": [str(copy / "codes")], "window_seconds": 0.3, "split": {"val": 0.2, "test": 0.2}},
    )
    with pytest.raises(ConfigError, match="changed after it was encoded"):
        _Sources(builder)
