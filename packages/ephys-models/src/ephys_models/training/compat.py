"""Whether a checkpoint fits new data, and whether a run can resume under a new configuration.

Both checks compare plain data (a checkpoint stores its run configuration and the dataset's
``data_spec`` as JSON-ready values), so they import nothing heavy and run before any work.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["RESUME_IDENTITY", "data_spec_problems", "resume_problems"]

#: Parts of a run configuration that a resumed run must keep: what was trained and on what,
#: how the data is ordered and batched, and the optimiser whose state the checkpoint holds.
#: Everything else (length, hardware, checkpoint cadence, logging, evaluation) may change.
RESUME_IDENTITY = (
    "seed",
    "model",
    "loss",
    "data.dataset",
    "data.batch_size",
    "data.drop_last",
    "data.mixup",
    "optim",
    "trainer.accumulate_grad_batches",
    "trainer.free_running",
    "trainer.swa",
)

_MODEL_FACTS = ("n_channels", "ch_types", "units", "sfreq", "vocab_size", "tokenizer")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _differs(key: str, stored: Any, new: Any) -> str:
    if isinstance(stored, list) and isinstance(new, list) and len(stored) == len(new):
        where = [i for i, (a, b) in enumerate(zip(stored, new, strict=True)) if a != b]
        return f"{key} differ at {len(where)} of {len(new)} channels (first: {where[0]})"
    return f"{key} {_show(stored)} -> {_show(new)}"


def data_spec_problems(
    stored: Mapping[str, Any], new: Mapping[str, Any], *, same_data: bool = False
) -> list[str]:
    """How ``new`` data differs from the data a checkpoint was trained on, where it matters.

    Parameters
    ----------
    stored
        The ``data_spec`` a checkpoint stores.
    new
        The ``data_spec()`` of the data to use now.
    same_data
        The data should be the very data of the run (resuming it): channel names and the
        window length must match too. Otherwise (testing or evaluating on other recordings)
        only what the model depends on is compared: channel count, types and units, sampling
        rate, and the vocabulary (or its absence, for continuous data).

    Returns
    -------
    list of str
        One line per difference, each starting with the ``data_spec`` key.
    """
    keys = [*_MODEL_FACTS, "ch_names", "n_times"] if same_data else list(_MODEL_FACTS)
    problems = []
    for key in keys:
        if key in ("units", "ch_types", "ch_names") and (key not in stored or key not in new):
            continue  # written by an older version: nothing to compare
        before, after = stored.get(key), new.get(key)
        if key == "sfreq" and before is not None and after is not None:
            if abs(float(before) - float(after)) < 1e-6:
                continue
        if before != after:
            if key == "vocab_size" and (before is None) != (after is None):
                kinds = ("continuous signals", "tokens")
                problems.append(
                    f"vocab_size: the model was trained on {kinds[before is not None]}, "
                    f"the data holds {kinds[after is not None]}"
                )
            else:
                problems.append(_differs(key, before, after))
    for key in ("n_conditions", "n_subjects"):
        if int(new.get(key) or 0) > int(stored.get(key) or 0):
            problems.append(
                f"{key}: the data has {new.get(key)}, the model was built for "
                f"{stored.get(key) or 0}"
            )
    return problems


def _flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, data


def resume_problems(stored: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What makes a run with configuration ``new`` unable to continue one trained with ``stored``.

    Both are resolved run configurations as data (``RunConfig.to_data()``, with the model's
    data-derived parameters filled in). Only :data:`RESUME_IDENTITY` is compared.

    Returns
    -------
    list of str
        ``"model.params.d_model: 64 -> 128"``, one line per changed key.
    """
    before, after = dict(_flatten(stored)), dict(_flatten(new))
    problems = []
    for key in sorted(set(before) | set(after)):
        if not any(key == part or key.startswith(part + ".") for part in RESUME_IDENTITY):
            continue
        if before.get(key) != after.get(key):
            problems.append(f"{key}: {_show(before.get(key))} -> {_show(after.get(key))}")
    return problems
