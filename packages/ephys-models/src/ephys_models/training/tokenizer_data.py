"""Training on a tokenizer's codes of signal data: the ``data.tokenizer`` key.

With ``data.tokenizer`` (a tokenizer folder, or the checkpoint of a run that trained a
tokenizer model such as brainomni), ``ephys train`` makes the code dataset it trains on:

1. a checkpoint is exported once, to ``<out_dir>/tokenizers/<name>-<identity[:12]>``; later
   runs find that folder by the checkpoint's SHA-256
   (:mod:`ephys_models.tokenizer_export`);
2. the dataset's ``roots`` (prepared signals) are encoded into ``data.codes_dir`` (by default
   ``<out_dir>/codes/<name>-<identity[:12]>``, so runs sharing a tokenizer share one encoding
   and another tokenizer never writes there). Encoding is resumable: sessions already encoded
   by this tokenizer are skipped, so a later run encodes nothing;
3. the run reads the codes: its configuration gets ``roots: [codes_dir]`` and ``codes_dir``
   filled in, and so do its ``config.yaml`` and checkpoints, so that ``ephys eval``, ``ephys
   test`` and ``--resume`` read the codes. A configuration whose roots are already its
   ``codes_dir`` (a stored one) reads them as they are.

The dataset encodes: its class offers ``encode_signals(tokenizer, roots, out_dir,
on_event=...)`` (``tokens_next_step`` does), so ``ephys-models`` needs no data package of its
own. :func:`tokenizer_problems` makes the cheap checks (no export, no encoding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ephys_core.config import RunConfig, load_config
from ephys_core.errors import ConfigError, EphysError
from ephys_core.logging import get_logger
from ephys_core.plugins import get_registry

__all__ = [
    "CODES_FOLDER",
    "TOKENIZERS_FOLDER",
    "TokenizerCodes",
    "tokenizer_codes",
    "tokenizer_problems",
]

logger = get_logger(__name__)

#: folders of ``out_dir`` holding the code datasets and the exported tokenizers
CODES_FOLDER, TOKENIZERS_FOLDER = "codes", "tokenizers"
_KEY = "data.tokenizer"
_WHAT = (
    "give a tokenizer folder (`ephys tokenizer export` or `fit`) or the checkpoint of a run that "
    "trained a tokenizer model (e.g. runs/brainomni/checkpoints/last.ckpt)"
)

Event = Callable[[str, Any], None]


@dataclass
class TokenizerCodes:
    """The codes a run trains on.

    Attributes
    ----------
    artifact
        The tokenizer (:class:`~ephys_tokenizers.artifact.TokenizerArtifact`).
    codes_dir
        The code dataset.
    exported
        Whether this run exported the tokenizer from its checkpoint.
    summary
        What encoding did (an :class:`~ephys_data.encoding.EncodeSummary`: ``done``,
        ``skipped``); ``None`` when the process may not write, and so encoded nothing.
    """

    artifact: Any
    codes_dir: Path
    exported: bool = False
    summary: Any = None


def _encoder(config: RunConfig) -> Any:
    return get_registry("datasets").metadata(
        config.component_name("data.dataset"), "encode_signals"
    )


def _checkpoint_problems(path: Path) -> list[str]:
    from ephys_models.tokenizer_export import checkpoint_tokenizer

    try:
        checkpoint_tokenizer(path)
    except ConfigError as err:  # a model that is not a tokenizer
        return [f"{_KEY}: {p}; {_WHAT}" for p in err.problems]
    except EphysError as err:  # not a readable checkpoint, or its model cannot be loaded
        return [f"{_KEY}: {err}"]
    except (KeyError, TypeError):
        return [f"{_KEY}: {path} is not a checkpoint of `ephys train`; {_WHAT}"]
    return []


def tokenizer_problems(config: RunConfig) -> list[str]:
    """What makes ``data.tokenizer`` unusable, found without exporting or encoding anything."""
    if config.data is None or config.data.tokenizer is None:
        return []
    path = Path(config.data.tokenizer)
    problems = []
    if not path.exists():
        problems.append(f"{_KEY}: {path} does not exist; {_WHAT}")
    elif path.is_dir():
        if not (path / "tokenizer.json").is_file():
            problems.append(f"{_KEY}: {path} is not a tokenizer folder (no tokenizer.json)")
    else:
        problems += _checkpoint_problems(path)
    if not callable(_encoder(config)):
        problems.append(
            f"{_KEY}: the dataset {config.component_name('data.dataset')} does not read a "
            "tokenizer's codes; use tokens_next_step (with the signals to encode as its roots)"
        )
    if config.name in (CODES_FOLDER, TOKENIZERS_FOLDER):
        problems.append(
            f"name: {config.name!r} is the folder of out_dir where data.tokenizer's "
            f"{config.name} go; choose another run name"
        )
    return problems


def _artifact(config: RunConfig, *, export: bool, notify: Event) -> tuple[Any, bool]:
    from ephys_models.tokenizer_export import export_to_store, find_export
    from ephys_tokenizers.artifact import load_tokenizer

    assert config.data is not None and config.data.tokenizer is not None
    path = Path(config.data.tokenizer)
    store = config.out_dir / TOKENIZERS_FOLDER
    try:
        if path.is_dir():
            return load_tokenizer(path), False
        found = find_export(path, store)
        if found is not None:
            return found, False
        if export:
            notify("export", path)
            return export_to_store(path, store), True
    except EphysError as err:  # not loadable, or the export failed (its run's data, ...)
        doing = "" if path.is_dir() else f"exporting {path}: "
        problems = getattr(err, "problems", None) or [str(err)]
        raise ConfigError([f"{_KEY}: {doing}{p}" for p in problems], source=config._source) from err
    raise ConfigError(
        f"{_KEY}: {path} has not been exported to {store} yet; `ephys train` does that",
        source=config._source,
    )


def _same(roots: Sequence[Any], folder: Path) -> bool:
    return [Path(r).resolve() for r in roots] == [folder.resolve()]


def _reading(config: RunConfig, codes_dir: Path) -> RunConfig:
    """``config`` with the code dataset as its data: ``roots: [codes_dir]``, ``codes_dir``."""
    raw = config.model_dump(mode="json")
    raw["data"]["dataset"]["params"]["roots"] = [str(codes_dir)]
    raw["data"]["codes_dir"] = str(codes_dir)
    reading = load_config(raw, hooks=False)
    reading._source = config._source
    return reading.resolve(["data", "model", "loss"])


def _encoding_error(err: EphysError, config: RunConfig) -> ConfigError:
    """encode_dataset's refusal, with the keys of the run configuration."""
    keys = {"data": "data.dataset.params.roots", "out": "data.codes_dir"}
    problems = []
    for problem in getattr(err, "problems", None) or [str(err)]:
        head, sep, rest = problem.partition(": ")
        problems.append(f"{keys[head]}: {rest}" if sep and head in keys else f"{_KEY}: {problem}")
    hint = (
        "give the prepared signals as the roots, or leave data.tokenizer out to train on "
        "these codes"
        if any("hold codes already" in p for p in problems)
        else None
    )
    return ConfigError(problems, source=config._source, hint=hint)


def tokenizer_codes(
    config: RunConfig, *, encode: bool = True, on_event: Event | None = None
) -> tuple[RunConfig, TokenizerCodes | None]:
    """The configuration that trains on ``data.tokenizer``'s codes, made if need be.

    Parameters
    ----------
    config
        A run configuration that :func:`tokenizer_problems` passes (it is not changed; without
        ``data.tokenizer`` it is returned as it is, with ``None``).
    encode
        Export and encode what is missing; otherwise (a process that may not write, such as
        another rank of a distributed run, or ``ephys eval CONFIG``) the export and the codes
        must exist.
    on_event
        Progress: ``("export", checkpoint)`` before exporting (not when an export of the
        checkpoint is found), then the events of
        :func:`~ephys_data.encoding.encode_dataset` (``("plan", {"total", "skipped"})``,
        ``("session", name)``).

    Raises
    ------
    ConfigError
        The tokenizer cannot be exported or loaded, the roots hold codes already, the codes
        folder holds another tokenizer's codes, or the sessions do not fit the tokenizer.
    """
    data = config.data
    if data is None or data.tokenizer is None:
        return config, None
    roots = config.params("data.dataset").model_dump().get("roots") or []
    if data.codes_dir is not None and _same(roots, data.codes_dir):
        return config, None  # a stored configuration: it reads its codes already
    notify = on_event or (lambda kind, payload: None)
    artifact, exported = _artifact(config, export=encode, notify=notify)
    codes_dir = data.codes_dir or (
        config.out_dir / CODES_FOLDER / f"{artifact.name}-{artifact.identity[:12]}"
    )
    codes = TokenizerCodes(artifact, Path(codes_dir), exported)
    if encode:
        try:
            codes.summary = _encoder(config)(artifact, roots, codes.codes_dir, on_event=notify)
        except EphysError as err:
            raise _encoding_error(err, config) from None
    elif not (codes.codes_dir / "manifest.json").is_file():
        raise ConfigError(
            f"data.codes_dir: {codes.codes_dir} holds no codes of {artifact.name} "
            f"{artifact.identity} yet; `ephys train` encodes them",
            source=config._source,
        )
    return _reading(config, codes.codes_dir), codes
