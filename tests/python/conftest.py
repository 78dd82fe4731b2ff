"""Python checks of the Rust binary against independent implementations (SciPy)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def foramen_bin() -> Path:
    """The built `foramen` binary: $FORAMEN_BIN, else target/debug, else target/release."""
    env = os.environ.get("FORAMEN_BIN")
    candidates = [Path(env)] if env else [REPO / "target/debug/foramen", REPO / "target/release/foramen"]
    for c in candidates:
        if c.is_file():
            return c
    raise RuntimeError(f"foramen binary not found in {candidates}: run `cargo build` (make test does)")
