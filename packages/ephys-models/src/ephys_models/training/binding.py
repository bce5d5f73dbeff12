"""Model parameters that come from the data.

A model's ``Config`` may declare fields named like keys of the dataset's ``data_spec()``
(``n_channels``, ``vocab_size``, ``n_conditions``, ``n_subjects``, ``sfreq``, ``n_times``,
``code_levels``).
Those the user left unset are filled from the data, so configurations stay short and always
agree with the dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ephys_core.logging import get_logger

__all__ = ["BOUND_KEYS", "bind_params"]

logger = get_logger(__name__)

BOUND_KEYS = (
    "n_channels",
    "vocab_size",
    "n_conditions",
    "n_subjects",
    "sfreq",
    "n_times",
    "code_levels",
)


def bind_params(
    config_model: Any, params: Mapping[str, Any], data_spec: Mapping[str, Any]
) -> dict[str, Any]:
    """``params`` plus data-derived values for the model's unset fields of bound names."""
    fields = getattr(config_model, "model_fields", {})
    bound = dict(params)
    for key in BOUND_KEYS:
        if key in fields and key not in params and data_spec.get(key) is not None:
            bound[key] = data_spec[key]
            logger.debug("model parameter %s = %r taken from the data", key, data_spec[key])
    return bound
