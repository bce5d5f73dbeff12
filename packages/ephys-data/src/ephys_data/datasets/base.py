"""The builder every windowed dataset shares: catalog, layout, split, windows, augmentation.

A dataset component is a :class:`WindowedBuilder` subclass that only says how a window becomes
an ``(inputs, targets)`` item (:meth:`WindowedBuilder.make_item`). Everything else (reading
memory-mapped sessions of several roots, mapping them to one channel layout, splitting,
windowing, training-only augmentation) is shared.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ephys_core.components import Component, ComponentConfig
from ephys_core.errors import ConfigError
from ephys_core.protocols import Segment, Split
from ephys_data.datasets.augment import Augmentation, apply_augmentations
from ephys_data.datasets.catalog import Catalog, SessionEntry
from ephys_data.datasets.layout import ChannelLayout
from ephys_data.datasets.splits import SplitConfig, leaking_subjects, split_sessions
from ephys_data.datasets.windows import WindowIndex, window_samples

__all__ = ["REGIONS", "WindowDataset", "WindowedBuilder", "WindowedConfig"]

#: channel subsets by region of the 2-D layout (y grows towards the nose)
REGIONS: dict[str, tuple[str, float, float]] = {
    "posterior": ("y", 0.0, 1 / 3),
    "visual": ("y", 0.0, 1 / 3),
    "central": ("y", 1 / 3, 2 / 3),
    "anterior": ("y", 2 / 3, 1.0),
    "frontal": ("y", 2 / 3, 1.0),
    "left": ("x", 0.0, 0.5),
    "right": ("x", 0.5, 1.0),
}


class WindowedConfig(ComponentConfig):
    """Parameters shared by every windowed dataset."""

    roots: list[Path] = Field(description="Prepared dataset folders, unioned into one dataset.")
    window_seconds: float = Field(2.0, gt=0, description="Length of the window a model sees.")
    overlap_seconds: float = Field(0.0, ge=0, description="Overlap of consecutive windows.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Train/val/test split.")
    channels: (
        list[str]
        | Literal["posterior", "visual", "central", "anterior", "frontal", "left", "right"]
        | None
    ) = Field(None, description="Channel names, or a region of the layout; all if unset.")
    fill_value: float = Field(0.0, description="Value of channels a session lacks.")
    labels: bool = Field(False, description="Add the per-sample condition labels to the inputs.")
    subjects: bool = Field(False, description="Add each window's subject index to the inputs.")
    mask_missing: bool = Field(
        False, description="Return targets with a presence mask of the channels a session has."
    )
    augmentations: list[Augmentation] = Field(
        default_factory=list, description="Training-only augmentations, applied in order."
    )
    non_finite: Literal["error", "skip"] = Field(
        "error",
        description="Sessions holding NaN or infinite samples: `error` refuses to open the "
        "dataset (naming them); `skip` leaves out every window that touches such a sample.",
    )


class WindowDataset:
    """One split: a map-style dataset of windows (numpy items).

    Parameters
    ----------
    builder
        The builder that owns the layout and item format.
    entries
        Sessions of this split.
    split
        ``train``, ``val`` or ``test``; only ``train`` is augmented.
    """

    def __init__(self, builder: WindowedBuilder, entries: list[SessionEntry], split: str):
        self.builder = builder
        self.entries = entries
        self.split = split
        self.training = split == "train" and bool(builder.config.augmentations)
        self.index = WindowIndex.build(
            [e.span[1] - e.span[0] for e in entries],
            builder.read_length,
            builder.step,
            bad=[builder.bad_samples(e) for e in entries],
        )
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.index)

    #: the training loader may ask for ``dataset[(index, epoch)]`` (see ``__getitem__``)
    accepts_epoch = True

    def _generator(self, key: tuple[int, int] | None) -> np.random.Generator:
        if key is not None:  # augmentation as a pure function of (seed, epoch, window)
            return np.random.default_rng([self.builder.config.split.seed, *key])
        if self._rng is None:  # per process: DataLoader workers get their own torch seed
            torch = sys.modules.get("torch")
            seed = torch.initial_seed() % (2**63) if torch is not None else None
            self._rng = np.random.default_rng(seed)
        return self._rng

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray | None, SessionEntry]:
        """The raw window ``i`` on the canonical layout, its labels and its session."""
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        entry = self.entries[int(self.index.session[i])]
        start = entry.span[0] + int(self.index.start[i])
        stop = start + self.index.length
        data = entry.session.data
        builder = self.builder
        out = np.full(
            (builder.layout.n_channels, self.index.length),
            builder.config.fill_value,
            dtype=data.dtype if builder.catalog.is_codes else np.float32,
        )
        out[builder.layout.index[entry.key]] = data[:, start:stop]
        if builder.rows is not None:
            out = out[builder.rows]
        labels = None
        if builder.config.labels:
            track = entry.session.labels
            labels = (
                np.asarray(track[start:stop], dtype=np.int64)
                if track is not None
                else np.zeros(self.index.length, dtype=np.int64)
            )
        return out, labels, entry

    def __getitem__(self, i: int | tuple[int, int]) -> tuple[Any, Any]:
        """Item ``i``; ``(i, epoch)`` makes its augmentation a function of the epoch.

        A resumed training run then sees the same augmented windows as an uninterrupted one.
        """
        key = None
        if isinstance(i, tuple):
            i, epoch = i
            key = (epoch, i)
        x, labels, entry = self.window(i)
        if self.training:
            x = self.builder.augment(x, self._generator(key))
        return self.builder.item(x, labels, entry, self.split)


class WindowedBuilder(Component):
    """Base of windowed dataset components (``ephys.datasets``).

    Subclasses set ``shift`` (extra samples read past the window: 1 for next-step targets) and
    implement :meth:`make_item`.
    """

    Config: ClassVar[type[WindowedConfig]] = WindowedConfig
    shift: ClassVar[int] = 1
    codes_on_disk: ClassVar[bool | None] = None  # True: needs mu-law data; False: signals

    def __init__(self, config: WindowedConfig) -> None:
        self.config = config
        self.catalog = Catalog(config.roots)
        if self.codes_on_disk is not None and self.catalog.is_codes != self.codes_on_disk:
            want = "mu-law codes (add the `mulaw` stage)" if self.codes_on_disk else "signals"
            raise ConfigError(f"roots: this dataset needs prepared data holding {want}")
        self.non_finite = self.catalog.non_finite()
        if self.non_finite and config.non_finite == "error":
            listed = ", ".join(f"{k} ({n})" for k, n in list(self.non_finite.items())[:10])
            more = f" and {len(self.non_finite) - 10} more" if len(self.non_finite) > 10 else ""
            raise ConfigError(
                f"roots: {len(self.non_finite)} session(s) hold NaN or infinite samples "
                f"(count in brackets): {listed}{more}; re-prepare them (find the broken channels "
                "or segments), or set `non_finite: skip` to leave out the windows touching them"
            )
        self.splits = split_sessions(self.catalog.entries, config.split)
        self.layout = ChannelLayout.build([(e.key, e.session) for e in self.catalog.entries])
        self.rows = self._channel_rows()
        self.length, self.step = window_samples(
            config.window_seconds, config.overlap_seconds, self.catalog.sfreq
        )
        self.read_length = self.length + self.shift
        self.subject_ids = {
            s: i for i, s in enumerate(sorted({e.subject for e in self.catalog.entries}))
        }
        self._datasets: dict[str, WindowDataset] = {}
        for augmentation in config.augmentations:
            if augmentation.image_only and not self.is_image:
                raise ConfigError(f"augmentations: {augmentation.name} works on sensor images only")

    is_image: ClassVar[bool] = False

    def _channel_rows(self) -> np.ndarray | None:
        choice = self.config.channels
        if choice is None:
            return None
        if isinstance(choice, str):
            if self.layout.pos_2d is None:
                raise ConfigError(f"channels: region {choice!r} needs channel positions")
            axis, low, high = REGIONS[choice]
            values = self.layout.pos_2d[:, 0 if axis == "x" else 1]
            rows = np.flatnonzero((values >= low) & (values <= high))
            if not len(rows):
                raise ConfigError(f"channels: no channel in region {choice!r}")
            return rows
        return self.layout.subset(choice)

    # -- the DatasetBuilder protocol -------------------------------------------------------
    def build(self, split: Split) -> WindowDataset:
        """The dataset of ``split`` (cached)."""
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r}; use train, val or test")
        if split not in self._datasets:
            self._datasets[split] = WindowDataset(self, self.splits[split], split)
        return self._datasets[split]

    @property
    def ch_names(self) -> list[str]:
        """Channel names of the items, in order."""
        names = self.layout.ch_names
        return names if self.rows is None else [names[i] for i in self.rows]

    def bad_samples(self, entry: SessionEntry) -> np.ndarray | None:
        """``(span,)`` bool: the samples of ``entry`` no window may touch (non-finite ones,
        with ``non_finite: skip``), or ``None``."""
        mask = self.catalog.bad_samples(entry.key)
        if mask is None:
            return None
        low, high = entry.span
        return mask[low:high]

    def _pick(self, array: np.ndarray | None) -> np.ndarray | None:
        if array is None or self.rows is None:
            return array
        return array[self.rows]

    def data_spec(self) -> dict[str, Any]:
        """Facts models are configured from, and what evaluators need to decode."""
        entries = self.catalog.entries
        rows = self.rows if self.rows is not None else range(self.layout.n_channels)
        spec: dict[str, Any] = {
            "n_channels": len(self.ch_names),
            "n_times": self.length,
            "sfreq": self.catalog.sfreq,
            "ch_names": self.ch_names,
            "ch_types": [self.layout.ch_types[i] for i in rows],
            "units": [self.layout.units[i] for i in rows],
            "pos_2d": None
            if self.layout.pos_2d is None
            else self._pick(self.layout.pos_2d).tolist(),
            "datasets": self.catalog.datasets,
            "transforms": {e.key: e.session.meta.get("transforms", []) for e in entries},
            "splits": {
                s: {"sessions": len(self.splits[s]), "windows": len(self.build(s))}
                for s in ("train", "val", "test")
            },
            "leaking_subjects": {}
            if self.config.split.strategy == "time"
            else leaking_subjects(self.splits),
            "non_finite": {
                "policy": self.config.non_finite,
                "sessions": dict(self.non_finite),
                "windows_dropped": {
                    s: self.build(s).index.dropped for s in ("train", "val", "test")
                },
            },
        }
        if self.config.subjects:  # only when items carry a subject index
            spec["n_subjects"] = len(self.subject_ids)
        if self.config.labels:
            # condition classes besides 0 ("no condition"): labels lie in [0, n_conditions]
            spec["n_conditions"] = max(
                (
                    int(np.max(e.session.labels))
                    for e in entries
                    if e.session.labels is not None and e.session.n_times
                ),
                default=0,
            )
        spec.update(self.extra_spec())
        return spec

    def split_digest(self, split: Split) -> dict[str, Any]:
        """What identifies the data of ``split``: a digest of its sessions' contents and spans,
        their count and seconds (what a tokenizer fitted or trained on it records)."""
        return split_digest(self.splits[split], self.catalog.sfreq)

    # -- the SegmentSource protocol (ephys_core.protocols): what evaluators use ------------
    def longest_segment(self, split: Split) -> int:
        """Samples of the longest stretch one session of ``split`` offers."""
        return max((e.span[1] - e.span[0] for e in self.splits[split]), default=0)

    def segments(self, split: Split, length: int, count: int, seed: int = 0) -> list[Segment]:
        """``count`` raw segments of ``length`` samples from ``split``, on the item layout.

        Segments are spread over the split's sessions in turn, at seeded random offsets, and
        never cover a non-finite sample; used by evaluators that need a context plus its true
        continuation, longer than a window.
        """
        starts: dict[str, np.ndarray] = {}  # clean start offsets of sessions with bad samples
        usable = []
        for entry in self.splits[split]:
            low, high = entry.span
            if high - low < length:
                continue
            bad = self.bad_samples(entry)
            if bad is not None:
                touched = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
                offsets = np.arange(0, high - low - length + 1)
                offsets = offsets[touched[offsets + length] == touched[offsets]]
                if not len(offsets):
                    continue
                starts[entry.key] = offsets
            usable.append(entry)
        if not usable:
            raise ConfigError(
                f"no {split} session has {length} usable samples in a row "
                f"({length / self.catalog.sfreq:.1f} s)"
            )
        rng = np.random.default_rng(seed)
        out = []
        for k in range(count):
            entry = usable[k % len(usable)]
            low, high = entry.span
            if entry.key in starts:
                start = low + int(rng.choice(starts[entry.key]))
            else:
                start = int(rng.integers(low, high - length + 1))
            data = entry.session.data
            x = np.full(
                (self.layout.n_channels, length),
                self.config.fill_value,
                dtype=data.dtype if self.catalog.is_codes else np.float32,
            )
            x[self.layout.index[entry.key]] = data[:, start : start + length]
            if self.rows is not None:
                x = x[self.rows]
            labels = None
            if self.config.labels:
                track = entry.session.labels
                labels = (
                    np.asarray(track[start : start + length], dtype=np.int64)
                    if track is not None
                    else np.zeros(length, dtype=np.int64)
                )
            subject = self.subject_ids[entry.subject] if self.config.subjects else None
            out.append(Segment(x, labels, subject, entry.key, start - entry.span[0], entry))
        return out

    def side_inputs(self, segments: Sequence[Segment], start: int, stop: int) -> dict[str, Any]:
        """The ``condition`` and ``subject`` tracks items carry, for ``[start, stop)``."""
        side: dict[str, Any] = {}
        if self.config.labels:
            side["condition"] = np.stack([s.labels[start:stop] for s in segments])
        if self.config.subjects:
            side["subject"] = np.asarray([s.subject for s in segments], dtype=np.int64)
        return side

    def extra_spec(self) -> Mapping[str, Any]:
        """Facts specific to one dataset kind (vocabulary size, image layout, ...)."""
        return {}

    def collate_fn(self, mixup: Any) -> Any:
        """The training ``collate_fn``: ``None`` (default collation) or mixup.

        Parameters
        ----------
        mixup
            A mixup section (``alpha``, ``prob``, ``num_classes``) or ``None``.
        """
        if mixup is None:
            return None
        if self.catalog.is_codes:
            raise ConfigError(
                "data.mixup: mixup blends signals, but this dataset holds mu-law codes; train "
                "on signals with `mulaw_next_step` (it mixes before quantising)"
            )
        from ephys_data.collate import mixup_collate

        return mixup_collate(
            mixup.alpha, mixup.prob, mixup.num_classes, seed=self.config.split.seed
        )

    # -- items ---------------------------------------------------------------------------------
    def augment(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply the training augmentations to a raw window."""
        return apply_augmentations(x, self.config.augmentations, rng)

    def item(
        self, x: np.ndarray, labels: np.ndarray | None, entry: SessionEntry, split: str = "val"
    ) -> tuple:
        """``(inputs, targets)``: :meth:`make_item` plus the optional extras of the config."""
        inputs, targets = self.make_item(x, split)
        extras: dict[str, Any] = {}
        if labels is not None:
            extras["condition"] = labels[: self.length]
        if self.config.subjects:
            extras["subject"] = np.int64(self.subject_ids[entry.subject])
        if extras:
            inputs = (
                {"x": inputs, **extras} if not isinstance(inputs, dict) else {**inputs, **extras}
            )
        if self.config.mask_missing:
            mask = self._pick(self.layout.mask(entry.key))
            targets = {"y": targets, "mask": mask}
        return inputs, targets

    def make_item(self, x: np.ndarray, split: str) -> tuple[Any, Any]:
        """Turn a ``(C, length + shift)`` window of ``split`` into ``(inputs, targets)``."""
        raise NotImplementedError

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> WindowedConfig:
        """A small prepared dataset written under ``workdir``, and a config reading it."""
        if workdir is None:
            return cls.Config(roots=[Path("prepared")])
        from ephys_data.synthetic import write_example_dataset

        root = write_example_dataset(Path(workdir) / "prepared", codes=bool(cls.codes_on_disk))
        return cls.Config(roots=[root], window_seconds=0.5, split=SplitConfig(val=0.2, test=0.2))


def split_digest(entries: Sequence[SessionEntry], sfreq: float) -> dict[str, Any]:
    """``{"sha256", "sessions", "seconds"}`` of the entries of one split (order-free)."""
    import hashlib

    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.key):
        digest.update(f"{entry.key}:{entry.session.digest}:{entry.span}".encode())
    samples = sum(b - a for a, b in (e.span for e in entries))
    return {"sha256": digest.hexdigest()[:16], "sessions": len(entries), "seconds": samples / sfreq}
