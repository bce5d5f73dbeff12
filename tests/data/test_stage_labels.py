"""Condition labels from events: the MOUS rules, general rules, both recording states."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from ephys_data.examples import example_raw
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages._mne import add_annotations
from ephys_data.stages.filters import Resample
from ephys_data.stages.io import Read
from ephys_data.stages.labels import ConditionLabels, Rule, build_labels

AUDITORY = ConditionLabels(ConditionLabels.Config(preset="mous_auditory"))
VISUAL = ConditionLabels(ConditionLabels.Config(preset="mous_visual"))


def events_recording(
    events: list[tuple[int, str]],
    sfreq: float = 100.0,
    n_times: int = 1000,
    task: str | None = "auditory",
) -> Recording:
    """An MNE-backed recording with annotation ``description`` at each ``sample``."""
    import mne

    raw = mne.io.RawArray(np.zeros((2, n_times)), mne.create_info(2, sfreq, "eeg"), verbose="error")
    add_annotations(
        raw, [s / sfreq for s, _ in events], [0.0] * len(events), [d for _, d in events]
    )
    return Recording.from_raw(raw, name="sub-A2002_task-auditory", task=task)


def expected(n_times: int, spans: list[tuple[int, int, int]]) -> np.ndarray:
    out = np.zeros(n_times, dtype=np.int16)
    for start, stop, value in spans:
        out[start:stop] = value
    return out


def test_mous_auditory_rules():
    rec = events_recording(
        [
            (100, "UPPT001/1"),
            (150, "UPPT001/10"),
            (230, "UPPT001/20"),
            (300, "UPPT001/40"),
            (400, "UPPT001/15"),
            (500, "UPPT001/3"),
            (520, "UPPT001/10"),
            (523, "UPPT001/20"),
            (600, "UPPT001/15"),
            (700, "UPPT001/2"),
            (800, "UPPT001/15"),
        ]
    )
    out = AUDITORY(rec)
    # 1 from a start code (1, 3, 5, 7) until code 15; 10/20/40 give 2/3/4 until the next
    # event; the 3-sample span of code 10 at 520 is ignored; code 2 starts nothing here
    assert np.array_equal(
        out.labels,
        expected(
            1000,
            [
                (100, 400, 1),
                (150, 230, 2),
                (230, 300, 3),
                (300, 400, 4),
                (500, 600, 1),
                (523, 600, 3),
            ],
        ),
    )
    assert out.labels.dtype == np.int16
    assert out.label_names == {
        0: "none",
        1: "auditory_trial",
        2: "category_10",
        3: "category_20",
        4: "category_40",
    }
    assert out.n_channels == rec.n_channels  # the labels are not a data row
    assert out.provenance["steps"][-1]["preset"] == "mous_auditory"


def test_mous_visual_rules():
    rec = events_recording(
        [
            (100, "UPPT001/6"),
            (200, "UPPT001/40"),
            (260, "UPPT001/15"),
            (300, "UPPT001/8"),
            (350, "UPPT001/15"),
        ]
    )
    out = VISUAL(rec)
    assert np.array_equal(out.labels, expected(1000, [(100, 200, 5), (200, 260, 4), (300, 350, 5)]))
    assert out.label_names[5] == "visual_trial"


def test_minimum_span_and_spans_running_to_the_end():
    events = [(10, 1, "a"), (16, 15, "b"), (20, 1, "c"), (27, 15, "d"), (40, 1, "e")]
    rules = [Rule(codes=[1], label=1, until=[15])]
    labels = build_labels(events, 60, 100.0, rules, min_span_samples=5)
    # 10-16 is 6 samples (kept), 20-27 is 7 (kept), 40 has no end: to the end of recording
    assert np.array_equal(labels, expected(60, [(10, 16, 1), (20, 27, 1), (40, 60, 1)]))
    labels = build_labels(events, 60, 100.0, rules, min_span_samples=6)
    assert np.array_equal(labels, expected(60, [(20, 27, 1), (40, 60, 1)]))
    capped = [Rule(codes=[1], label=1, until=[15], max_duration=0.05)]
    assert np.array_equal(
        build_labels(events, 60, 100.0, capped, 0),
        expected(60, [(10, 15, 1), (20, 25, 1), (40, 45, 1)]),
    )


def test_general_rules_by_description_and_by_code():
    rec = events_recording(
        [(100, "Stimulus/S 11"), (200, "Response/R 1"), (300, "go"), (450, "stop")], task="task"
    )
    stage = ConditionLabels(
        ConditionLabels.Config(
            rules=[
                Rule(codes=[11], label=7, name="target"),
                Rule(codes=["go"], label=2, name="go", until=["stop"]),
            ]
        )
    )
    out = stage(rec)
    assert np.array_equal(out.labels, expected(1000, [(100, 200, 7), (300, 450, 2)]))
    assert out.label_names == {0: "none", 7: "target", 2: "go"}


def test_rest_and_auto():
    events = [(100, "UPPT001/1"), (300, "UPPT001/15")]
    auto = ConditionLabels(ConditionLabels.Config(preset="auto"))
    assert auto(events_recording(events, task="auditory")).labels.max() == 1
    assert auto(events_recording(events, task="visual")).labels.max() == 5
    rest = auto(events_recording(events, task="rest"))
    assert not rest.labels.any() and len(rest.labels) == 1000
    assert not AUDITORY(events_recording(events, task="restafter")).labels.any()
    with pytest.raises(RecordingError, match="cannot tell the MOUS task"):
        auto(events_recording(events, task="task"))
    with pytest.raises(ValidationError, match="either `preset` or `rules`"):
        ConditionLabels.Config(preset="mous_visual", rules=[Rule(codes=[1], label=1)])


def test_stimulus_channel_selection():
    events = [(100, "UPPT002/1"), (150, "UPPT001/1"), (300, "UPPT002/15"), (400, "UPPT001/15")]
    rec = events_recording(events)
    # MOUS presets read UPPT001 when it is there (responses on UPPT002 are ignored)
    assert np.array_equal(AUDITORY(rec).labels, expected(1000, [(150, 400, 1)]))
    other = ConditionLabels(ConditionLabels.Config(preset="mous_auditory", stim_channel="UPPT002"))
    assert np.array_equal(other(rec).labels, expected(1000, [(100, 300, 1)]))


def test_array_state_and_resampling_keep_the_track_aligned():
    raw = example_raw()  # 200 Hz, 10 s
    add_annotations(
        raw, [1.0, 3.0, 6.0, 8.0], [0.0] * 4, ["UPPT001/1", "UPPT001/15", "UPPT001/5", "UPPT001/15"]
    )
    mne_rec = Recording.from_raw(raw, name="x", task="auditory")
    resampled = Resample(Resample.Config(sfreq=100.0))(mne_rec)
    as_array = resampled.with_data(resampled.get_data())
    assert as_array.state == "array" and len(as_array.annotations) == 4
    out = AUDITORY(as_array)
    assert np.array_equal(out.labels, expected(1000, [(100, 300, 1), (600, 800, 1)]))
    labelled = Resample(Resample.Config(sfreq=50.0))(AUDITORY(mne_rec))  # after the labels
    assert np.array_equal(labelled.labels, expected(500, [(50, 150, 1), (300, 400, 1)]))


def test_bad_annotations_are_not_events():
    rec = events_recording([(100, "UPPT001/1"), (200, "BAD_flat"), (300, "UPPT001/15")])
    stage = ConditionLabels(ConditionLabels.Config(rules=[Rule(codes=[1], label=1)]))
    assert np.array_equal(stage(rec).labels, expected(1000, [(100, 300, 1)]))


@pytest.mark.realdata
def test_labels_from_a_real_stimulus_channel(recordings):
    rec = Read(Read.Config())(Recording.unloaded(recordings / "kit/test.sqd"))
    codes = [(round(a["onset"] * rec.sfreq), a["description"]) for a in rec.annotations]
    assert codes and all(d.startswith("STI 014/") for _, d in codes)
    stage = ConditionLabels(
        ConditionLabels.Config(
            stim_channel="STI 014", rules=[Rule(codes=[255], label=1), Rule(codes=[254], label=2)]
        )
    )
    out = stage(rec)
    assert len(out.labels) == rec.n_times
    starts = [s for s, _ in codes]
    for (start, description), stop in zip(codes, [*starts[1:], rec.n_times], strict=True):
        value = {"STI 014/255": 1, "STI 014/254": 2}.get(description, 0)
        if stop - start > 5:
            assert set(out.labels[start:stop]) == {value}
