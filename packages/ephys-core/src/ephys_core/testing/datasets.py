"""Conformance checks for ``ephys.datasets`` builders and ``ephys.sources`` discovery."""

from __future__ import annotations

from pathlib import Path

from ephys_core.testing._common import build, digest, ensure, structure

__all__ = ["check_data_spec", "check_discovers", "check_splits", "check_stable_items"]


def check_splits(component: type, workdir: Path) -> None:
    """Every split builds, is non-empty, and its items share one structure."""
    builder = build(component, workdir)
    for split in ("train", "val", "test"):
        dataset = builder.build(split)
        ensure(len(dataset) > 0, f"the {split} split is empty")
        first, last = dataset[0], dataset[len(dataset) - 1]
        ensure(
            structure(first) == structure(last),
            f"{split} items differ in structure: {structure(first)} vs {structure(last)}",
        )
        ensure(isinstance(first, tuple) and len(first) == 2, "items must be (inputs, targets)")


def check_stable_items(component: type, workdir: Path) -> None:
    """Validation and test items are the same every time they are read (no augmentation)."""
    builder = build(component, workdir)
    for split in ("val", "test"):
        dataset = builder.build(split)
        ensure(digest(dataset[0]) == digest(dataset[0]), f"{split}[0] differs between reads")


def check_data_spec(component: type, workdir: Path) -> None:
    """``data_spec()`` reports positive ``n_channels``, ``n_times`` and ``sfreq``."""
    spec = build(component, workdir).data_spec()
    for key in ("n_channels", "n_times", "sfreq"):
        ensure(key in spec, f"data_spec() lacks {key!r}")
        ensure(spec[key] > 0, f"data_spec()[{key!r}] = {spec[key]!r} is not positive")


def check_discovers(component: type, workdir: Path) -> None:
    """Discovery finds recordings that exist, with unique names."""
    refs = list(build(component, workdir).discover())
    ensure(bool(refs), "discover() found nothing in the example data set")
    names = [ref.name for ref in refs]
    ensure(len(set(names)) == len(names), f"duplicate session names: {names}")
    missing = [str(ref.path) for ref in refs if not Path(ref.path).exists()]
    ensure(not missing, f"discovered paths that do not exist: {missing}")
