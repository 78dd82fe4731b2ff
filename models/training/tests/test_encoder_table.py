"""The encoder table: equal epochs for every encoder, scratch never inherits the pretrained
encoder's settings, INT8 models are timed, and a second invocation trains nothing."""

import json
import tomllib

from foramen_train import encoder_table

LITE_CONFIG = """[data]
root = "{root}"
[model]
encoder = "efficientnet-lite0"
width = 64
height = 64
base_channels = 8
stage_blocks = [1, 1, 1]
decoder_channels = [8, 16, 32]
sppm_channels = 16
head_channels = 16
[train]
epochs = 5
batch_size = 4
lr = 5e-3
encoder_lr_mult = 0.1
freeze_stem = true
max_minutes = 30
fit_epochs_to_time = true
"""


def test_encoder_table_trains_equal_epochs_and_times_fp32_and_int8(tiny_dataset, tmp_path, capsys):
    config = tmp_path / "lite.toml"
    config.write_text(LITE_CONFIG.format(root=tiny_dataset))
    out = tmp_path / "table"
    argv = ["--config", str(config), "--out", str(out), "--epochs", "1", "--size", "64"]
    argv += ["--encoders", "stdc-scratch", "efficientnet-lite0", "--threads", "1", "--repeats", "3"]
    assert encoder_table.main(argv) == 0

    effective = {
        name: tomllib.loads((out / f"{name}-s0" / "config.toml").read_text())
        for name in ("stdc-scratch", "efficientnet-lite0")
    }
    for name, cfg in effective.items():
        assert cfg["model"]["encoder"] == name
        assert cfg["train"]["epochs"] == 1 and cfg["train"]["max_minutes"] == 0
        assert not cfg["train"]["fit_epochs_to_time"]
    scratch, lite = effective["stdc-scratch"]["train"], effective["efficientnet-lite0"]["train"]
    assert scratch["encoder_lr_mult"] == 1.0 and not scratch["freeze_stem"]
    # The bundled scratch model's encoder width, whatever the base config says.
    assert effective["stdc-scratch"]["model"]["base_channels"] == 16
    assert lite["encoder_lr_mult"] == 0.1 and lite["freeze_stem"]

    table = json.loads((out / "table.json").read_text())
    assert set(table["rows"]) == {"stdc-scratch", "efficientnet-lite0"}
    for row in table["rows"].values():
        assert row["seeds"] == [0] and row["epochs"] == [1]
        assert row["latency"]["fp32"]["median_ms"] > 0 and row["latency"]["int8"]["median_ms"] > 0
    assert (out / "efficientnet-lite0-s0" / "model.int8.onnx").is_file()
    assert table["verdict"]["winner"] == "efficientnet-lite0"
    assert table["rows"]["efficientnet-lite0"]["params"] > table["rows"]["stdc-scratch"]["params"]
    printed = capsys.readouterr().out
    assert "| stdc-scratch | 1 |" in printed and "| efficientnet-lite0 | 1 |" in printed

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")}
    assert encoder_table.main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")} == stamps
