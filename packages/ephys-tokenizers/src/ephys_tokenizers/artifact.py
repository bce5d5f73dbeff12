"""A tokenizer as a versioned artifact: its registry name, parameters, fitted state and the
identity that ties codes to the tokenizer that made them.

Layout of a tokenizer folder::

    <folder>/
      tokenizer.json    # schema, name, params, identity, what it was fitted on
      state.npz         # the fitted arrays (absent for tokenizers without state)

The identity is the SHA-256 of the name, the parameters and the state's bytes (and of the
fitted-on record), so two folders with the same identity encode identically, and a code
dataset or a checkpoint that records an identity can refuse any other tokenizer. Written
atomically (a hidden temporary folder renamed into place); nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ephys_core.errors import EphysError

__all__ = [
    "SCHEMA",
    "TokenizerArtifact",
    "TokenizerArtifactError",
    "describe_tokenizer",
    "load_tokenizer",
    "save_tokenizer",
    "tokenizer_identity",
]

SCHEMA = "ephys-tokenizer/1"
_META, _STATE = "tokenizer.json", "state.npz"


class TokenizerArtifactError(EphysError, ValueError):
    """A tokenizer folder is missing, malformed or does not match its recorded identity."""


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _state_of(tokenizer: Any) -> dict[str, np.ndarray]:
    state = getattr(tokenizer, "state", None)
    return {k: np.ascontiguousarray(v) for k, v in (state() if callable(state) else {}).items()}


def _params_of(tokenizer: Any) -> dict[str, Any]:
    return json.loads(json.dumps(tokenizer.config.model_dump(mode="json")))


def tokenizer_identity(
    name: str,
    params: Mapping[str, Any],
    state: Mapping[str, np.ndarray],
    fitted_on: Mapping[str, Any] | None = None,
) -> str:
    """SHA-256 (hex, first 16 characters) of everything that determines the codes."""
    digest = hashlib.sha256(_canonical({"name": name, "params": dict(params)}))
    for key in sorted(state):
        array = np.ascontiguousarray(state[key])
        digest.update(_canonical([key, array.dtype.str, list(array.shape)]))
        digest.update(array.tobytes())
    digest.update(_canonical(dict(fitted_on or {})))
    return digest.hexdigest()[:16]


def describe_tokenizer(
    name: str, tokenizer: Any, fitted_on: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``{"name", "params", "identity"}``: what a code dataset and a checkpoint record."""
    params = _params_of(tokenizer)
    identity = tokenizer_identity(name, params, _state_of(tokenizer), fitted_on)
    return {"name": name, "params": params, "identity": identity}


@dataclass(frozen=True)
class TokenizerArtifact:
    """A loaded tokenizer folder."""

    name: str
    tokenizer: Any
    identity: str
    folder: Path | None = None
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """``{"name", "params", "identity"}`` (as :func:`describe_tokenizer`)."""
        return {"name": self.name, "params": _params_of(self.tokenizer), "identity": self.identity}


def save_tokenizer(
    tokenizer: Any, name: str, folder: str | Path, fitted_on: Mapping[str, Any] | None = None
) -> TokenizerArtifact:
    """Write ``tokenizer`` (registered as ``name``) to ``folder``, replacing what is there.

    Parameters
    ----------
    fitted_on
        JSON-ready facts about the training data (for example the prepared dataset's content
        hash, the split and the number of samples); part of the identity.
    """
    folder = Path(folder)
    state = _state_of(tokenizer)
    params = _params_of(tokenizer)
    identity = tokenizer_identity(name, params, state, fitted_on)
    meta = {
        "schema": SCHEMA,
        "name": name,
        "params": params,
        "identity": identity,
        "fitted_on": dict(fitted_on or {}),
        "state_file": _STATE if state else None,
        "vocab_size": int(tokenizer.vocab_size),
        "time_stride": int(getattr(tokenizer, "time_stride", 1)),
        "causal": bool(getattr(tokenizer, "causal", False)),
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if state:
            np.savez(tmp / _STATE, **state)
        (tmp / _META).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TokenizerArtifact(name, tokenizer, identity, folder, dict(fitted_on or {}))


def load_tokenizer(folder: str | Path) -> TokenizerArtifact:
    """Build the tokenizer a folder describes, through the ``tokenizers`` registry.

    Raises
    ------
    TokenizerArtifactError
        The folder is not a tokenizer folder, or its state does not give its identity.
    UnknownComponentError
        No installed package registers the tokenizer's name.
    """
    from ephys_core.plugins import get_registry

    folder = Path(folder)
    path = folder / _META
    if not path.is_file():
        raise TokenizerArtifactError(
            f"{folder} is not a tokenizer folder (no {_META}); write one with `ephys tokenizer fit`"
        )
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise TokenizerArtifactError(f"{path}: not valid JSON ({err})") from None
    if meta.get("schema") != SCHEMA:
        raise TokenizerArtifactError(f"{path}: schema {meta.get('schema')!r}, expected {SCHEMA}")
    tokenizer = get_registry("tokenizers").create(meta["name"], meta.get("params") or {})
    state: dict[str, np.ndarray] = {}
    if meta.get("state_file"):
        state_path = folder / Path(meta["state_file"]).name
        if not state_path.is_file():
            raise TokenizerArtifactError(f"{folder}: its state file {state_path.name} is missing")
        with np.load(state_path, allow_pickle=False) as stored:
            state = {k: stored[k] for k in stored.files}
        tokenizer.load_state(state)
    identity = tokenizer_identity(
        meta["name"], _params_of(tokenizer), _state_of(tokenizer), meta.get("fitted_on")
    )
    if identity != meta.get("identity"):
        raise TokenizerArtifactError(
            f"{folder}: its contents give identity {identity}, but it records "
            f"{meta.get('identity')}; the folder was changed after it was written"
        )
    return TokenizerArtifact(meta["name"], tokenizer, identity, folder, meta.get("fitted_on") or {})
