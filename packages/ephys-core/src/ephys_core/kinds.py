"""The kinds of component ephys knows, and the entry-point group each one is discovered from.

A *kind* is a family of interchangeable components (all models, all losses, ...). Every kind has
one registry (:func:`ephys_core.registry.get_registry`) fed by one entry-point group, so a
third-party distribution adds a component by declaring, in its ``pyproject.toml``::

    [project.entry-points."ephys.models"]
    my_net = "my_package.models:MyNet"

A renamed component keeps its old name working through the kind's alias group, whose values
are the new names (the old name still loads, with a deprecation warning)::

    [project.entry-points."ephys.models.aliases"]
    old_net = "my_net"

Two further groups are not component kinds: ``ephys.cli`` (sub-commands for the ``ephys``
command line) and ``ephys.hooks`` (pluggy hook-implementation modules).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CLI_GROUP", "HOOKS_GROUP", "KINDS", "Kind", "get_kind"]

CLI_GROUP = "ephys.cli"
HOOKS_GROUP = "ephys.hooks"


@dataclass(frozen=True)
class Kind:
    """Description of one kind of component.

    Attributes
    ----------
    name
        Plural registry key, also the suffix of the entry-point group (``"models"``).
    singular
        Used in messages (``"model"``).
    summary
        One line saying what components of this kind do.
    required
        Attributes a loaded component must have; checked when it is loaded, so that a broken
        plugin is reported at the point of use rather than deep inside training.
    """

    name: str
    singular: str
    summary: str
    required: tuple[str, ...]

    @property
    def group(self) -> str:
        """The entry-point group components of this kind are discovered from."""
        return f"ephys.{self.name}"

    @property
    def alias_group(self) -> str:
        """The entry-point group of deprecated names (``old = "new"``) of this kind."""
        return f"ephys.{self.name}.aliases"


_COMMON = ("Config", "example_config")

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "models",
            "model",
            "neural networks mapping a batch of signals or tokens to predictions",
            (*_COMMON, "causal", "example_input", "output_shape"),
        ),
        Kind(
            "losses",
            "loss",
            "training objectives returning a scalar loss and named metrics",
            (*_COMMON, "metrics", "example_inputs"),
        ),
        Kind(
            "evaluators",
            "evaluator",
            "judges of a trained model that write a summary and plots",
            (*_COMMON, "outputs", "evaluate", "example_context"),
        ),
        Kind(
            "preprocessing",
            "preprocessing stage",
            "steps that turn a raw recording into a model-ready one",
            (*_COMMON, "example_input", "output_sfreq"),
        ),
        Kind(
            "tokenizers",
            "tokenizer",
            "maps between continuous signals and discrete codes",
            (*_COMMON, "causal", "encode", "decode", "example_input"),
        ),
        Kind(
            "datasets",
            "dataset",
            "builders of the train, validation and test sets a model consumes",
            (*_COMMON, "build", "data_spec"),
        ),
        Kind(
            "sources",
            "data source",
            "discovery of the recordings that make up a data set (BIDS, folders, ...)",
            (*_COMMON, "discover"),
        ),
    )
}


def get_kind(name: str) -> Kind:
    """Return the kind called ``name`` (plural or singular), or raise a helpful error.

    Raises
    ------
    UnknownComponentError
        If no kind has this name.
    """
    if name in KINDS:
        return KINDS[name]
    for kind in KINDS.values():
        if name == kind.singular:
            return kind
    from ephys_core.errors import UnknownComponentError

    raise UnknownComponentError("kinds", name, KINDS, noun="kind", listing=False)
