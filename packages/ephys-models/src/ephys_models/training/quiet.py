"""Keeping Lightning's banners off the terminal: ephys reports progress and results itself."""

from __future__ import annotations

import logging
import warnings

__all__ = ["quiet_lightning"]


def quiet_lightning() -> None:
    """Silence Lightning's start-up lines unless ``-vv`` asks for debug output.

    Lightning sets its loggers' levels when it is imported, so this imports it first. Its
    "GPU available" lines and product tips, and a known deprecation warning of its pytree
    helper, only add noise to ephys's own output.
    """
    import lightning.pytorch  # noqa: F401 - it sets its loggers' levels when imported

    if logging.getLogger("ephys").getEffectiveLevel() > logging.DEBUG:
        for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
