"""Python checks of the Rust binary against independent implementations (SciPy)."""

import os
import signal
import subprocess
import tempfile
import threading
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


def live_until(foramen_bin: Path, args, until, timeout_s: float = 90) -> subprocess.CompletedProcess:
    """Runs `foramen live --headless ARGS` until a line it prints satisfies `until`, then
    ends it as Ctrl-C does (the session closes and prints its summary).

    A test that waits for what the session said, not for a number of frames, does not
    depend on how fast the machine loads the model: a CI run under load once ended a
    25-frame session while the model was still loading. ARGS should ask for more frames
    than the test needs; past `timeout_s` the process is killed and the test fails.
    """
    cmd = [str(foramen_bin), "live", "--headless", *map(str, args)]
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        lines, stopped = [], False
        try:
            for line in proc.stdout:
                lines.append(line)
                if not stopped and until(line):
                    proc.send_signal(signal.SIGINT)
                    stopped = True
            rc = proc.wait()
        finally:
            timer.cancel()
        err.seek(0)
        return subprocess.CompletedProcess(cmd, rc, "".join(lines), err.read())
