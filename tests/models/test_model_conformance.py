"""The shared conformance suite on every model and loss of ephys-models."""

from ephys_core.testing import conformance_tests

test_conformance = conformance_tests(["models", "losses"], distribution="ephys-models")
