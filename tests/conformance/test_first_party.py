"""Every dataset, data source and evaluator that ships with ephys passes the shared suite.

Models, losses, tokenizers and preprocessing stages run the same suite in their own folders
(``tests/models``, ``tests/tokenizers``, ``tests/data``).
"""

from ephys_core.testing import conformance_tests

test_data_components = conformance_tests(["datasets", "sources"], distribution="ephys-data")
test_evaluators = conformance_tests("evaluators", distribution="ephys-eval")
