"""`benches/model_ab.py`: models timed call by call in alternation, with real ONNX Runtime
sessions on the bundled INT8 models; bad inputs name their file."""

import json
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "benches" / "model_ab.py"
MODELS = [REPO / "models" / "lumbar-synth.int8.onnx", REPO / "models" / "vocalfolds.int8.onnx"]


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_times_each_model_at_its_own_input_shape(tmp_path):
    out = tmp_path / "ab.json"
    result = run(*MODELS, "--calls", "5", "--warmup", "1", "--json", out)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert (doc["calls"], doc["warmup"], doc["threads"]) == (5, 1, 2)
    rows = doc["models"]
    assert list(rows) == [str(m) for m in MODELS]
    # Each model's own contract size: lumbar 384x224, vocalfolds 320x320.
    assert [rows[str(m)]["input_shape"] for m in MODELS] == [[1, 3, 224, 384], [1, 3, 320, 320]]
    for row in rows.values():
        assert 0 < row["p10_ms"] <= row["p50_ms"] <= row["p90_ms"], row
    assert all(str(m) in result.stdout for m in MODELS)


def test_bad_inputs_name_the_file(tmp_path):
    missing = tmp_path / "absent.onnx"
    result = run(MODELS[0], missing, "--calls", "1")
    assert result.returncode == 1 and f"{missing}: no such model file" in result.stderr, result.stderr
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    result = run(garbage, "--calls", "1")
    assert result.returncode == 1 and str(garbage) in result.stderr, result.stderr
    assert not (tmp_path / "ab.json").exists()
