"""One canonical channel layout for sessions recorded on different systems or with bad channels.

A channel's identity is decided channel by channel:

* a channel **with a position** (a finite, non-zero ``pos_3d`` row) is identified by its type,
  its position (rounded to 0.1 mm) and its coil normal ``ori_3d`` (rounded to 0.01), and for
  gradiometers (``grad``, and ``ref_meg``, whose reference gradiometers share positions and
  normals with reference magnetometers) also by the coil's x axis ``coil_x_3d``, the direction
  of the measured gradient: the two planar gradiometers at one MEGIN site differ only in that.
  The same physical sensor therefore matches across sessions whatever it is called;
* a channel **without a position** (EEG without a montage, KIT reference channels, a channel
  whose ``loc`` is all zero) is identified by its type and name.

A session never maps two of its channels onto one canonical row: channels of one session that
still share an identity (sessions prepared before ``coil_x_3d`` was stored, CTF reference
magnetometers and gradiometers recorded with identical geometry, sensors closer than the
rounding) are told apart by their names, deterministically, with a warning. Each
session keeps an index map from its rows to canonical rows; canonical channels a session lacks
are filled with a configurable value and reported by a presence mask.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_data.format import Session
from ephys_data.recording import channel_has_position

__all__ = ["ChannelLayout", "channel_keys"]

logger = get_logger(__name__)

#: Channel types whose identity includes the coil's x axis (the direction of the gradient).
GRADIENT_TYPES = frozenset({"grad", "ref_meg"})


def _rows(meta: Mapping[str, Any], field: str, n: int) -> np.ndarray | None:
    value = meta.get(field)
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (n, 3):
        return None
    return np.where(np.isfinite(array), array, 0.0)


def channel_keys(meta: Mapping[str, Any]) -> list[tuple]:
    """The identity of each channel of a session sidecar, unique within the session."""
    return _channel_keys(meta)[0]


def _channel_keys(meta: Mapping[str, Any]) -> tuple[list[tuple], list[str]]:
    """The channel identities, and the names of the channels told apart by name."""
    types, names = list(meta["ch_types"]), list(meta["ch_names"])
    n = len(types)
    pos3, ori, coil_x = (_rows(meta, f, n) for f in ("pos_3d", "ori_3d", "coil_x_3d"))
    located = channel_has_position(pos3) if pos3 is not None else np.zeros(n, dtype=bool)
    pos3 = np.round(pos3, 4) if pos3 is not None else None
    ori = np.round(ori, 2) if ori is not None else None
    coil_x = np.round(coil_x, 2) if coil_x is not None else None
    keys: list[tuple] = []
    for i, ch_type in enumerate(types):
        if not located[i]:
            keys.append((ch_type, "name", names[i]))
            continue
        key: tuple = (ch_type, "pos", *pos3[i].tolist())  # type: ignore[index]
        if ori is not None:
            key += tuple(ori[i].tolist())
        if coil_x is not None and ch_type in GRADIENT_TYPES:
            key += ("x", *coil_x[i].tolist())
        keys.append(key)
    counts = Counter(keys)
    shared = [i for i, key in enumerate(keys) if counts[key] > 1]
    seen: Counter[tuple] = Counter()
    for i in shared:
        base = (*keys[i], "name", names[i])
        seen[base] += 1
        # identical names too (impossible in MNE files): number them in channel order
        keys[i] = base if seen[base] == 1 else (*base, seen[base])
    return keys, [names[i] for i in shared]


@dataclass
class ChannelLayout:
    """The union of channels over sessions.

    Attributes
    ----------
    ch_names, ch_types
        Canonical channel names (the smallest name seen for that sensor) and types.
    units
        Physical unit of each canonical channel (the first non-empty unit seen).
    pos_2d, pos_3d, ori_3d
        Averaged positions (``None`` when a session had none).
    index
        Session key -> ``(C_session,)`` int array of canonical rows, without repeats.
    """

    ch_names: list[str]
    ch_types: list[str]
    units: list[str]
    pos_2d: np.ndarray | None
    pos_3d: np.ndarray | None
    ori_3d: np.ndarray | None
    index: dict[str, np.ndarray]

    @classmethod
    def build(cls, sessions: Sequence[tuple[str, Session]]) -> ChannelLayout:
        """Merge the channels of ``(key, session)`` pairs, in first-seen order."""
        slots: dict[tuple, int] = {}
        names: list[set[str]] = []
        types: list[str] = []
        units: list[str] = []
        sums: dict[str, list[np.ndarray | None]] = {"pos_2d": [], "pos_3d": [], "ori_3d": []}
        counts: list[int] = []
        index: dict[str, np.ndarray] = {}
        told_apart: dict[str, list[str]] = {}
        for key, session in sessions:
            meta = session.meta
            session_units = list(meta.get("units") or [])
            rows = []
            keys, shared = _channel_keys(meta)
            if shared:
                told_apart[key] = shared
            for i, channel_key in enumerate(keys):
                slot = slots.get(channel_key)
                if slot is None:
                    slot = slots[channel_key] = len(types)
                    names.append(set())
                    types.append(meta["ch_types"][i])
                    units.append("")
                    counts.append(0)
                    for field in sums:
                        sums[field].append(None)
                names[slot].add(meta["ch_names"][i])
                if not units[slot] and i < len(session_units):
                    units[slot] = str(session_units[i] or "")
                counts[slot] += 1
                for field in sums:
                    value = meta.get(field)
                    if value is not None:
                        row = np.asarray(value[i], dtype=float)
                        old = sums[field][slot]
                        sums[field][slot] = row if old is None else old + row
                rows.append(slot)
            if len(set(rows)) != len(rows):  # channel_keys makes this impossible; never serve it
                raise ConfigError(
                    f"roots: session {key} maps several channels onto one layout row; re-prepare it"
                )
            index[key] = np.asarray(rows, dtype=np.int64)
        if told_apart:
            first, shared = next(iter(told_apart.items()))
            logger.warning(
                "%d session(s) have channels whose stored geometry (position, normal, gradient "
                "direction) equals that of another of their channels: sessions prepared before "
                "gradient directions were stored (re-prepare them), or coils recorded with the "
                "same geometry (some CTF reference channels). They are told apart by name and "
                "match only channels of the same name in other sessions. First: %s (%s)",
                len(told_apart),
                first,
                ", ".join(shared[:6]) + (", ..." if len(shared) > 6 else ""),
            )

        def average(field: str) -> np.ndarray | None:
            values = sums[field]
            if any(v is None for v in values):
                return None
            out = np.stack(values) / np.asarray(counts, dtype=float)[:, None]
            if field == "ori_3d":
                norm = np.linalg.norm(out, axis=1, keepdims=True)
                out = np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)
            return out

        return cls(
            ch_names=[min(n) for n in names],
            ch_types=types,
            units=units,
            pos_2d=average("pos_2d"),
            pos_3d=average("pos_3d"),
            ori_3d=average("ori_3d"),
            index=index,
        )

    @property
    def n_channels(self) -> int:
        """Canonical channel count."""
        return len(self.ch_names)

    def type_ids(self) -> np.ndarray:
        """``(C,)`` integer id of each channel's type (sorted type names)."""
        order = {t: i for i, t in enumerate(sorted(set(self.ch_types)))}
        return np.asarray([order[t] for t in self.ch_types], dtype=np.int64)

    def mask(self, key: str) -> np.ndarray:
        """``(C,)`` bool: which canonical channels session ``key`` has."""
        present = np.zeros(self.n_channels, dtype=bool)
        present[self.index[key]] = True
        return present

    def subset(self, names: Sequence[str]) -> np.ndarray:
        """Canonical rows of ``names`` (errors list unknown names)."""
        where = {n: i for i, n in enumerate(self.ch_names)}
        missing = [n for n in names if n not in where]
        if missing:
            raise ConfigError(f"channels: not in the layout: {missing[:10]}")
        return np.asarray([where[n] for n in names], dtype=np.int64)
