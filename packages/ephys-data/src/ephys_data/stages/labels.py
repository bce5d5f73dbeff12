"""Per-sample condition labels built from events, kept beside the signal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError, annotations_from_raw
from ephys_data.stages._mne import add_step
from ephys_data.stages.base import Stage
from ephys_data.stages.io import stim_code

__all__ = ["PRESETS", "ConditionLabels", "Event", "Rule", "build_labels"]

logger = get_logger(__name__)

Event = tuple[int, int | None, str]
"""An event: ``(sample, code or None, description)``."""


class Rule(ComponentConfig):
    """Events with one of ``codes`` start label ``label``, held until ``until``."""

    codes: list[int | str] = Field(
        ...,
        min_length=1,
        description="Event codes (integers) or exact annotation descriptions (strings) that "
        "start the label.",
    )
    label: int = Field(..., ge=1, le=32767, description="Label value written (1..32767).")
    name: str | None = Field(None, description="What the label means (stored as label_names).")
    until: Literal["next_event"] | list[int | str] = Field(
        "next_event",
        description="`next_event` (any later event ends it) or the codes/descriptions of "
        "the events that end it.",
    )
    max_duration: float | None = Field(
        None, gt=0, description="Cut spans longer than this (seconds); null = no limit."
    )


def _mous(start_codes: list[int], start_label: int, start_name: str) -> tuple[Rule, ...]:
    return (
        Rule(codes=start_codes, label=start_label, name=start_name, until=[15]),
        Rule(codes=[10], label=2, name="category_10"),
        Rule(codes=[20], label=3, name="category_20"),
        Rule(codes=[40], label=4, name="category_40"),
    )


#: Rules of the presets (the MOUS rules of the previous generation).
PRESETS: dict[str, tuple[Rule, ...]] = {
    "mous_auditory": _mous([1, 3, 5, 7], 1, "auditory_trial"),
    "mous_visual": _mous([1, 2, 3, 4, 5, 6, 7, 8], 5, "visual_trial"),
    "rest": (),
}

#: Stimulus channel of the MOUS presets (CTF parallel-port trigger).
MOUS_STIM_CHANNEL = "UPPT001"


def _matches(event: Event, keys: Sequence[int | str]) -> bool:
    _, code, description = event
    return any(description == key if isinstance(key, str) else code == key for key in keys)


def build_labels(
    events: Sequence[Event],
    n_times: int,
    sfreq: float,
    rules: Sequence[Rule],
    min_span_samples: int = 5,
) -> np.ndarray:
    """The ``(n_times,)`` int16 label track that ``rules`` give for ``events``.

    Rules are applied in order, each to every event that matches it; where spans of
    different rules overlap, the later rule wins. A span runs from its event to the next
    later event (``until: next_event``) or the next later event with one of the ``until``
    codes, or to the end of the recording if there is none, cut at ``max_duration``; spans of
    ``min_span_samples`` samples or fewer are ignored. Samples outside every span are 0.
    """
    labels = np.zeros(n_times, dtype=np.int16)
    ordered = sorted(events, key=lambda e: e[0])
    samples = np.array([e[0] for e in ordered], dtype=np.int64)
    for rule in rules:
        if rule.until == "next_event":
            ends = samples
        else:
            ends = samples[[j for j, e in enumerate(ordered) if _matches(e, rule.until)]]
        for event in ordered:
            if not _matches(event, rule.codes):
                continue
            start = event[0]
            k = int(np.searchsorted(ends, start, side="right"))  # first end strictly later
            stop = int(ends[k]) if k < len(ends) else n_times
            if rule.max_duration is not None:
                stop = min(stop, start + int(round(rule.max_duration * sfreq)))
            stop = min(stop, n_times)
            if stop - start <= min_span_samples:
                continue
            labels[start:stop] = rule.label
    return labels


class ConditionLabels(Stage):
    """Build the per-sample condition label track from events and annotations.

    The track (``Recording.labels``, int16, 0 = no condition) is stored beside the signal,
    never as a data row, with ``label_names``. Events are the recording's annotations: those
    `read` made from stimulus channels (``"UPPT001/15"``: code 15) and those of the file
    (``"Stimulus/S 10"``: code 10); ``BAD``/``EDGE`` annotations are ignored. ``rules`` map
    codes to labels ("code X starts label L, held until the next event / until code Y");
    presets reproduce the MOUS rules of the previous generation (``mous_auditory``: codes 1,
    3, 5, 7 give 1 until code 15; ``mous_visual``: codes 1-8 give 5 until code 15; both:
    codes 10, 20, 40 give 2, 3, 4 until the next event; spans of 5 samples or fewer
    ignored), and ``auto`` picks one from the task. Rest recordings get all zeros. Works on
    MNE- and array-backed recordings at their current sampling frequency; `resample` keeps
    the track aligned.
    """

    class Config(ComponentConfig):
        preset: Literal["auto", "mous_auditory", "mous_visual", "rest"] | None = Field(
            None,
            description="Use a preset's rules; `auto` picks mous_auditory, mous_visual or "
            "rest from the task (or name) of each recording. Null = `rules`.",
        )
        rules: list[Rule] = Field(
            default_factory=list, description="Label rules, applied in order (later win)."
        )
        stim_channel: str | None = Field(
            None,
            description="Only use events `<stim_channel>/<code>` of this stimulus channel; "
            "null = every event (MOUS presets: UPPT001 when present).",
        )
        min_span_samples: int = Field(
            5, ge=0, description="Spans of this many samples or fewer are ignored."
        )
        rest_tasks: list[str] = Field(
            default_factory=lambda: ["rest"],
            description="Recordings whose task (or name) contains one of these get all zeros.",
        )

        @model_validator(mode="after")
        def _one_source(self) -> ConditionLabels.Config:
            if self.preset is not None and self.rules:
                raise ValueError("give either `preset` or `rules`, not both")
            return self

    requires: ClassVar[str] = "loaded"

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> ConditionLabels.Config:
        """The MOUS auditory preset, matching :meth:`example_input`'s events."""
        return cls.Config(preset="mous_auditory")

    def example_input(self, workdir: Path) -> Recording:
        """The example EEG recording with MOUS-like trigger annotations."""
        from ephys_data.examples import example_raw
        from ephys_data.stages._mne import add_annotations

        raw = example_raw()
        onsets = [0.5, 1.0, 1.6, 2.2, 4.0, 5.0, 5.5, 6.1, 8.0]
        codes = [1, 10, 20, 40, 15, 3, 10, 20, 15]
        add_annotations(
            raw, onsets, [0.0] * len(onsets), [f"{MOUS_STIM_CHANNEL}/{c}" for c in codes]
        )
        return Recording.from_raw(raw, name="example", subject="01", task="auditory")

    def apply(self, recording: Recording) -> Recording:
        cfg = self.config
        preset = self._preset(recording)
        rules = PRESETS[preset] if preset is not None else tuple(cfg.rules)
        if self._is_rest(recording) or preset == "rest":
            rules = ()
        events = self._events(recording, preset)
        labels = build_labels(
            events, recording.n_times, recording.sfreq, rules, cfg.min_span_samples
        )
        names: dict[int, str] = {0: "none"}
        for rule in rules:
            names.setdefault(rule.label, rule.name or f"label_{rule.label}")
        values, counts = np.unique(labels, return_counts=True)
        out = recording.replace(labels=labels, label_names=names)
        return add_step(
            out,
            "condition_labels",
            preset=preset,
            n_rules=len(rules),
            n_events=len(events),
            samples_per_label={int(v): int(c) for v, c in zip(values, counts, strict=True)},
        )

    def _preset(self, recording: Recording) -> str | None:
        preset = self.config.preset
        if preset != "auto":
            return preset
        text = (recording.task or recording.name).lower()
        if self._is_rest(recording):
            return "rest"
        for word, name in (("auditory", "mous_auditory"), ("visual", "mous_visual")):
            if word in text:
                return name
        raise RecordingError(
            f"{recording.name}: preset `auto` cannot tell the MOUS task of task "
            f"{recording.task!r}; expected one containing auditory, visual or rest. Set "
            "`preset` or `rules` of `condition_labels`"
        )

    def _is_rest(self, recording: Recording) -> bool:
        text = (recording.task or recording.name).lower()
        return any(word.lower() in text for word in self.config.rest_tasks)

    def _events(self, recording: Recording, preset: str | None) -> list[Event]:
        annotations: Sequence[Mapping[str, Any]] = (
            annotations_from_raw(recording.raw)
            if recording.state == "mne"
            else recording.annotations
        )
        channel = self.config.stim_channel
        if (
            channel is None
            and preset in ("mous_auditory", "mous_visual")
            and any(str(a["description"]).startswith(MOUS_STIM_CHANNEL + "/") for a in annotations)
        ):
            channel = MOUS_STIM_CHANNEL
        events: list[Event] = []
        for item in annotations:
            description = str(item["description"])
            if description.upper().startswith(("BAD", "EDGE")):
                continue
            if channel is not None and not description.startswith(channel + "/"):
                continue
            sample = int(round(float(item["onset"]) * recording.sfreq))
            if 0 <= sample < recording.n_times:
                events.append((sample, stim_code(description), description))
        return events
