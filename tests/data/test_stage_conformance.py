"""The shared conformance suite on every preprocessing stage of ephys-data."""

from ephys_core.testing import conformance_tests

test_conformance = conformance_tests("preprocessing", distribution="ephys-data")
