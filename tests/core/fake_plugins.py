"""Source code of fake plugins, written into fake distributions by the core tests."""

from __future__ import annotations

GOOD_MODEL = '''
from typing import ClassVar
from pydantic import BaseModel, Field

class Config(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}
    width: int = Field(8, gt=0, description="Width.")
    depth: int = Field(2, gt=0, description="Depth.")

class Net:
    """A fake model."""
    Config: ClassVar = Config
    causal: ClassVar[bool] = True

    def __init__(self, config):
        self.config = config

    @classmethod
    def example_config(cls, workdir=None):
        return cls.Config()

    def example_input(self, batch_size=2):
        return None

    def output_shape(self, inputs):
        return ()
'''

BROKEN_IMPORT = """
raise ImportError("libfoo.so.1: cannot open shared object file")
"""

MISSING_DEPENDENCY = """
import not_a_real_dependency_xyz

class Net:
    pass
"""
