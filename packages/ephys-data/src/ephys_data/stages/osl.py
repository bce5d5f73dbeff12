"""Running a preprocessing chain written for OSL-ephys, in its own configuration syntax."""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import Field, field_validator

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages._mne import add_step, import_optional, mne_quiet
from ephys_data.stages.base import Stage
from ephys_data.stages.filters import resample_labels

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["OSLChain", "parse_chain"]

logger = get_logger(__name__)

INSTALL = 'pip install "ephys-data[osl]"'

#: A chain in OSL-ephys syntax: the default of the ``osl`` stage and its documentation example.
EXAMPLE_CHAIN = """\
preproc:
  - filter: {l_freq: 1, h_freq: 45, method: iir, iir_params: {order: 5, ftype: butter}}
  - notch_filter: {freqs: 50}
  - resample: {sfreq: 100}
"""


def parse_chain(chain: str | Mapping[str, Any]) -> dict[str, Any]:
    """The OSL-ephys configuration ``chain`` as a mapping, checked for the ``preproc`` list.

    ``chain`` is a YAML string or a mapping, exactly as OSL-ephys users write it::

        preproc:
          - filter: {l_freq: 1, h_freq: 45}
          - bad_channels: {picks: mag}

    Raises
    ------
    ValueError
        Not YAML, no ``preproc`` list, or a step that is not a one-key mapping.
    """
    if isinstance(chain, str):
        try:
            chain = yaml.safe_load(chain)
        except yaml.YAMLError as err:
            raise ValueError(f"the OSL-ephys chain is not valid YAML: {err}") from err
    if not isinstance(chain, Mapping) or not isinstance(chain.get("preproc"), list):
        raise ValueError("an OSL-ephys chain needs a `preproc:` list of steps")
    for i, step in enumerate(chain["preproc"]):
        if not isinstance(step, Mapping) or len(step) != 1:
            raise ValueError(
                f"preproc[{i}] must be a mapping with one key (the method), e.g. "
                "`- filter: {l_freq: 1}`, not {step!r}"
            )
        options = next(iter(step.values()))
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"preproc[{i}]: the options of {next(iter(step))!r} must be a mapping")
    return copy.deepcopy(dict(chain))


class OSLChain(Stage):
    """Run a preprocessing chain written in OSL-ephys's own configuration syntax.

    ``config`` is what OSL-ephys users already have: a YAML string (or mapping) with a
    ``preproc:`` list of one-key steps, each an OSL-ephys wrapper (``bad_channels``,
    ``bad_segments``, ``ica_raw``, ...), an MNE wrapper (``notch_filter``, ``resample``,
    ``maxwell_filter``, ...) or any :class:`mne.io.Raw` method (``filter``,
    ``set_channel_types``, ...), with that function's arguments. Steps run in order through
    ``osl_ephys.preprocessing`` on a copy of the recording; the result carries the chain in
    its provenance. Needs ``ephys-data[osl]``.
    """

    class Config(ComponentConfig):
        config: str | dict[str, Any] = Field(
            EXAMPLE_CHAIN,
            description="OSL-ephys chain: YAML text or a mapping with a `preproc:` list.",
        )
        random_seed: int | None = Field(
            0, description="Seed OSL-ephys sets before the chain (ICA, ...); null = none."
        )

        @field_validator("config")
        @classmethod
        def _chain(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
            parse_chain(value)
            return value

    def __init__(self, config: BaseModel) -> None:
        super().__init__(config)
        self.chain = parse_chain(self.config.config)
        methods = [next(iter(step)) for step in self.chain["preproc"]]
        # an instance attribute: whether the chain keeps the duration depends on its steps
        self.preserves_duration = not any(m in ("crop", "crop_by_annotation") for m in methods)

    def output_sfreq(self, sfreq: float) -> float:
        """The ``sfreq`` of the chain's last ``resample`` step, else ``sfreq``."""
        for step in reversed(self.chain["preproc"]):
            method, options = next(iter(step.items()))
            if method == "resample" and options and "sfreq" in options:
                return float(options["sfreq"])
        return sfreq

    def example_input(self, workdir: Path) -> Recording:
        """The default example; the conformance check is skipped without OSL-ephys."""
        if not _installed():
            from ephys_core.testing import NotApplicable

            raise NotApplicable(f"osl-ephys is not installed ({INSTALL})")
        return super().example_input(workdir)

    def apply(self, recording: Recording) -> Recording:
        batch = import_optional("osl_ephys.preprocessing", "the `osl` stage", "osl-ephys", INSTALL)
        chain = batch.load_config(copy.deepcopy(self.chain))
        if self.config.random_seed is not None:
            from osl_ephys.utils.misc import set_random_seed

            set_random_seed(self.config.random_seed)
        dataset: dict[str, Any] = {
            "raw": recording.raw.copy(),
            "events": None,
            "epochs": None,
            "event_id": chain["meta"]["event_codes"],
            "ica": None,
            "fig": {},
        }
        methods = []
        with mne_quiet(recording.name, logger):
            for i, step in enumerate(copy.deepcopy(chain["preproc"])):
                method, options = next(iter(step.items()))
                options = dict(options or {})
                func = batch.find_func(method, target=options.get("target", "raw"))
                if func is None:
                    raise RecordingError(
                        f"{recording.name}: OSL-ephys has no preprocessing method {method!r} "
                        f"(preproc[{i}]); see the osl_ephys.preprocessing documentation"
                    )
                try:
                    dataset = func(dataset, options)
                except Exception as err:  # any failure inside OSL-ephys or MNE stops the chain
                    raise RecordingError(
                        f"{recording.name}: OSL-ephys step preproc[{i}] {method!r} failed: "
                        f"{type(err).__name__}: {err}"
                    ) from err
                methods.append(method)
            raw = dataset["raw"]
            out = recording.with_raw(raw)
        if recording.labels is not None and out.n_times != recording.n_times:
            out = out.replace(
                labels=resample_labels(recording.labels, recording.sfreq, out.sfreq, out.n_times)
            )
        details: dict[str, Any] = {"chain": self.chain, "methods": methods, "osl_ephys": _version()}
        if dataset.get("ica") is not None:
            details["ica_excluded"] = [int(i) for i in dataset["ica"].exclude]
        return add_step(out, "osl", **details)


def _installed() -> bool:
    """Whether osl-ephys can be imported (without importing it: that takes seconds)."""
    try:
        return importlib.util.find_spec("osl_ephys") is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken install
        return False


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("osl-ephys")
    except PackageNotFoundError:
        return None
