"""One canonical channel layout for sessions recorded on different systems or with bad channels.

A channel's identity is its type plus its sensor position and orientation (rounded), so the
same physical sensor matches across sessions whatever it is called, and the two planar
gradiometers at one MEGIN location stay distinct. Sessions without positions match by type and
name. Each session keeps an index map from its rows to canonical rows; canonical channels a
session lacks are filled with a configurable value and reported by a presence mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ephys_data.format import Session

__all__ = ["ChannelLayout"]


def _keys(meta: dict) -> list[tuple]:
    types = meta["ch_types"]
    pos3, ori = meta.get("pos_3d"), meta.get("ori_3d")
    if pos3 is not None:
        pos3 = np.round(np.asarray(pos3, dtype=float), 4)
        ori = np.round(np.asarray(ori, dtype=float), 2) if ori is not None else None
        return [
            (t, "pos", *pos3[i].tolist(), *(ori[i].tolist() if ori is not None else ()))
            for i, t in enumerate(types)
        ]
    return [(t, "name", n) for t, n in zip(types, meta["ch_names"], strict=True)]


@dataclass
class ChannelLayout:
    """The union of channels over sessions.

    Attributes
    ----------
    ch_names, ch_types
        Canonical channel names (the smallest name seen for that sensor) and types.
    pos_2d, pos_3d, ori_3d
        Averaged positions (``None`` when a session had none).
    index
        Session key -> ``(C_session,)`` int array of canonical rows.
    """

    ch_names: list[str]
    ch_types: list[str]
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
        sums: dict[str, list[np.ndarray | None]] = {"pos_2d": [], "pos_3d": [], "ori_3d": []}
        counts: list[int] = []
        index: dict[str, np.ndarray] = {}
        for key, session in sessions:
            meta = session.meta
            rows = []
            for i, channel_key in enumerate(_keys(meta)):
                slot = slots.get(channel_key)
                if slot is None:
                    slot = slots[channel_key] = len(types)
                    names.append(set())
                    types.append(meta["ch_types"][i])
                    counts.append(0)
                    for field in sums:
                        sums[field].append(None)
                names[slot].add(meta["ch_names"][i])
                counts[slot] += 1
                for field in sums:
                    value = meta.get(field)
                    if value is not None:
                        row = np.asarray(value[i], dtype=float)
                        old = sums[field][slot]
                        sums[field][slot] = row if old is None else old + row
                rows.append(slot)
            index[key] = np.asarray(rows, dtype=np.int64)

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
            from ephys_core.errors import ConfigError

            raise ConfigError(f"channels: not in the layout: {missing[:10]}")
        return np.asarray([where[n] for n in names], dtype=np.int64)
