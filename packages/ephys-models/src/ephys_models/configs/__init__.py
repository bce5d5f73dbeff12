"""Torch-free configurations of every ephys-models component, and their registrations.

Each module holds one family's pydantic ``Config`` models and the
:class:`~ephys_core.components.LazyComponent` that its entry point names, so that
``ephys config validate`` and the first checks of ``ephys train`` validate ``model.params`` and
``loss.params`` in a fraction of a second, without importing torch, Lightning or transformers.
The component classes (``ephys_models.gpt2meg.GPT2MEG``, ...) use these very ``Config``
classes; the registry checks that they agree when a component is loaded.

Nothing here may import torch (``tests/core/test_import_budget.py`` checks it).
"""
