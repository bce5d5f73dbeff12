"""The shared conformance suite on every tokenizer of ephys-tokenizers."""

from ephys_core.testing import conformance_tests

test_conformance = conformance_tests("tokenizers", distribution="ephys-tokenizers")
