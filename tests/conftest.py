"""Shared test set-up: hypothesis profiles and strategies that build inputs away from kinks and ties."""
import os

import numpy as np
import pytest
from cuda_emulation import emulated, libraries  # noqa: F401 (fixtures: the host builds of kernels/cuda)
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def reference_backend():
    """Pin a module to the reference backend (``pytestmark = pytest.mark.usefixtures("reference_backend")``):
    gradient checks and PyTorch comparisons test the code in minitorch_alex/ops, not whichever
    backend 'auto' would pick. A test inside may still select another with ``mt.config.using``."""
    import minitorch_alex as mt

    with mt.config.using(backend="reference"):
        yield
