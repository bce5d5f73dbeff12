"""The shared conformance suite on every model, loss and tokenizer of ephys-models."""

from ephys_core.testing import conformance_tests

test_conformance = conformance_tests(
    ["models", "losses", "tokenizers"], distribution="ephys-models"
)
