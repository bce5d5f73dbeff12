from ephys_core.testing import conformance_tests

test_conformance = conformance_tests(distribution="ephys-plugin-example")
