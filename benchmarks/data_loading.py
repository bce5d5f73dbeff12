"""Window loading from a prepared dataset, against the previous generation's chunk format.

Dataset: 30 minutes of simulated 306-channel MEG (three 10-minute sessions), resampled to
200 Hz and normalised by the real pipeline. Both readers serve the same 2-second windows
(random order) on the same canonical channel layout:

* **ephys**: ``continuous_next_step`` over memory-mapped float32 sessions (this format).
* **baseline**: the previous implementation's format and reader, re-created for comparison:
  60-second chunk files holding a pickled dict with float64 data, loaded with
  ``np.load(allow_pickle=True)`` through a per-process LRU cache of 64 chunks, sliced and
  scattered into the canonical layout. (Its windows may not cross chunks, ours may.)

Printed: windows/s and MB/s of float32 windows delivered for a cold pass (first epoch: files
read from the page cache / disk) and a warm pass, their ratio, and the memory of a process that
reads 2000 windows, for 10, 20 and 30 minutes of data: the memory it owns (it should stay flat
for ephys; the baseline's chunk cache grows with the data) and its peak resident set, which also
counts touched pages of memory-mapped files (page cache the kernel can drop).

Run: ``.venv/bin/python benchmarks/data_loading.py [--workdir DIR] [--windows N]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _simulated import prepared  # noqa: E402

WINDOW_SECONDS = 2.0


class LegacyChunks:
    """The previous generation's chunked, pickled format and its windowed reader."""

    def __init__(self, root: Path, ch_names: list[str], cache_size: int = 64):
        self.root = root
        self.ch_names = ch_names
        self.cache: OrderedDict[Path, dict] = OrderedDict()
        self.cache_size = cache_size
        self.index: list[tuple[Path, int]] = []

    @staticmethod
    def write(prepared_root: Path, out: Path, chunk_seconds: float = 60.0) -> None:
        from ephys_data.format import PreparedDataset

        for session in PreparedDataset(prepared_root).sessions():
            folder = out / session.name
            folder.mkdir(parents=True, exist_ok=True)
            step = int(chunk_seconds * session.sfreq)
            for i, start in enumerate(range(0, session.n_times, step)):
                chunk = {
                    "data": np.asarray(session.data[:, start : start + step], np.float64),
                    "ch_names": session.meta["ch_names"],
                    "ch_types": session.meta["ch_types"],
                    "pos_2d": np.asarray(session.meta["pos_2d"]),
                    "sfreq": session.sfreq,
                    "session": session.name,
                }
                np.save(folder / f"{i}.npy", chunk, allow_pickle=True)

    def build_index(self, length: int) -> None:
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for chunk in sorted(folder.glob("*.npy"), key=lambda p: int(p.stem)):
                n = self._load(chunk)["data"].shape[1]
                self.index += [(chunk, s) for s in range(0, n - length + 1, length)]
        self.cache.clear()
        self.length = length

    def _load(self, path: Path) -> dict:
        if path in self.cache:
            self.cache.move_to_end(path)
            return self.cache[path]
        chunk = np.load(path, allow_pickle=True).item()
        self.cache[path] = chunk
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return chunk

    @functools.cache  # noqa: B019 - one layout map per channel list, as the old splitter kept
    def _rows(self, names: tuple[str, ...]) -> list[int]:
        where = {n: i for i, n in enumerate(self.ch_names)}
        return [where[n] for n in names]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        path, start = self.index[i]
        chunk = self._load(path)
        x = chunk["data"][:, start : start + self.length + 1]
        rows = self._rows(tuple(chunk["ch_names"]))
        out = np.zeros((len(self.ch_names), x.shape[1]), dtype=np.float32)
        out[rows] = x
        return out[:, :-1], out[:, 1:]


def ephys_dataset(root: Path):
    from ephys_core import get_registry

    builder = get_registry("datasets").create(
        "continuous_next_step",
        {
            "roots": [str(root)],
            "window_seconds": WINDOW_SECONDS,
            "split": {"strategy": "session", "val": 0.0, "test": 0.0},
        },
    )
    return builder.build("train")


def throughput(dataset, n: int, seed: int = 0) -> tuple[float, float]:
    order = np.random.default_rng(seed).permutation(len(dataset))[:n]
    start = time.perf_counter()
    nbytes = 0
    for i in order:
        x, _ = dataset[int(i)]
        nbytes += x.nbytes
    elapsed = time.perf_counter() - start
    return n / elapsed, nbytes / elapsed / 2**20


def peak_memory(kind: str, root: Path, legacy: Path, n: int) -> tuple[float, float]:
    """``(anonymous RSS, peak RSS)`` in MB of a fresh process reading ``n`` random windows."""
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from data_loading import LegacyChunks, ephys_dataset, throughput
from pathlib import Path
import json
if {kind!r} == "ephys":
    ds = ephys_dataset(Path({str(root)!r}))
else:
    names = json.load(open(Path({str(root)!r}) / "sessions" / sorted(
        p.name for p in (Path({str(root)!r}) / "sessions").iterdir())[0] / "meta.json"))["ch_names"]
    ds = LegacyChunks(Path({str(legacy)!r}), names)
    ds.build_index(int({WINDOW_SECONDS} * 200))
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
throughput(ds, {n})
# RssAnon: memory the process owns; VmHWM: peak resident set, which also counts pages of
# memory-mapped files (shared, reclaimable page cache)
print(json.dumps([status("RssAnon"), status("VmHWM")]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def subset(root: Path, names: list[str], out: Path) -> Path:
    from ephys_data.format import write_manifest

    (out / "sessions").mkdir(parents=True, exist_ok=True)
    for name in names:
        link = out / "sessions" / name
        if not link.exists():
            link.symlink_to(root / "sessions" / name)
    write_manifest(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ephys-benchmarks"
    )
    parser.add_argument("--windows", type=int, default=3000)
    args = parser.parse_args()
    root = prepared(args.workdir, 3, 10.0)
    from ephys_data.format import PreparedDataset

    sessions = PreparedDataset(root).sessions()
    ch_names = sessions[0].meta["ch_names"]
    legacy = args.workdir / "legacy-3x10min"
    if not legacy.is_dir():
        LegacyChunks.write(root, legacy)

    print(
        f"dataset: {len(sessions)} sessions, {sum(s.n_times for s in sessions) / 200 / 60:.0f}"
        f" min, {len(ch_names)} channels at 200 Hz; windows of {WINDOW_SECONDS} s"
    )
    ours = ephys_dataset(root)
    theirs = LegacyChunks(legacy, ch_names)
    theirs.build_index(int(WINDOW_SECONDS * 200))
    print(f"{'reader':<10}{'pass':<6}{'windows/s':>12}{'MB/s':>10}")
    rows = {}
    for label, dataset in (("ephys", ours), ("baseline", theirs)):
        for name, seed in (("cold", 0), ("warm", 1)):
            rows[label, name] = throughput(dataset, args.windows, seed)
            print(f"{label:<10}{name:<6}{rows[label, name][0]:>12.0f}{rows[label, name][1]:>10.0f}")
    for name in ("cold", "warm"):
        print(
            f"ephys / baseline ({name}): {rows['ephys', name][0] / rows['baseline', name][0]:.1f}x"
        )

    print(
        "\nmemory (MB) of a process after reading 2000 random windows: owned (RssAnon) and "
        "peak resident incl. mapped file pages (VmHWM)"
    )
    print(f"{'data':<8}{'ephys owned':>12}{'ephys peak':>12}{'base owned':>12}{'base peak':>12}")
    names = [s.name for s in sessions]
    for k in (1, 2, 3):
        sub = subset(root, names[:k], args.workdir / f"subset-{k}")
        legacy_sub = args.workdir / f"legacy-subset-{k}"
        if not legacy_sub.exists():
            legacy_sub.mkdir()
            for name in names[:k]:
                (legacy_sub / name).symlink_to(legacy / name)
        (ea, ep), (ba, bp) = (
            peak_memory(kind, sub, legacy_sub, 2000) for kind in ("ephys", "baseline")
        )
        print(f"{k * 10:>3} min {ea:>12.0f}{ep:>12.0f}{ba:>12.0f}{bp:>12.0f}")


if __name__ == "__main__":
    main()
