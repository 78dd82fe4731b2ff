"""Broken models and bad data sets through the real binary (issue 8).

Batch commands (`segment`, `replay`, `eval`) must exit non-zero with a message that names
the file, before writing anything that could pass for a finished result; the live
session must keep the video going and say why the AI is off. The broken models are made
here from the bundled one with the `onnx` package: not ONNX at all, no Foramen metadata,
metadata whose input size contradicts the graph, and metadata with fewer classes than
the graph outputs.
"""

import json
import platform
import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from conftest import REPO, live_until

BUNDLED = REPO / "models" / "lumbar-synth.onnx"


def broken_models(tmp: Path) -> dict[str, Path]:
    models = {}
    garbage = tmp / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf at all\x00\xff" * 40)
    models["not onnx"] = garbage

    proto = onnx.load(str(BUNDLED))
    meta = {p.key: p.value for p in proto.metadata_props}
    doc = json.loads(meta["foramen"])

    def with_meta(name: str, new_doc: dict | None) -> Path:
        m = onnx.load(str(BUNDLED))
        del m.metadata_props[:]
        if new_doc is not None:
            entry = m.metadata_props.add()
            entry.key, entry.value = "foramen", json.dumps(new_doc)
        path = tmp / f"{name}.onnx"
        onnx.save(m, str(path))
        return path

    models["no metadata"] = with_meta("nometa", None)
    wrong_size = json.loads(json.dumps(doc))
    wrong_size["input"]["width"] = doc["input"]["width"] + 64
    models["input size contradicts the graph"] = with_meta("wrongsize", wrong_size)
    fewer = json.loads(json.dumps(doc))
    fewer["classes"] = fewer["classes"][:2]
    models["fewer classes than outputs"] = with_meta("fewclasses", fewer)
    return models


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, foramen_bin) -> Path:
    """A small synthetic data set (images, masks, lists) made by `foramen synth`."""
    out = tmp_path_factory.mktemp("scenes") / "data"
    subprocess.run(
        [str(foramen_bin), "synth", "--out", str(out), "--count", "20", "--seed", "3", "--size", "160x96"],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return broken_models(tmp_path_factory.mktemp("models"))


def run(foramen_bin, *args, timeout=120):
    return subprocess.run([str(foramen_bin), *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "kind", ["not onnx", "no metadata", "input size contradicts the graph", "fewer classes than outputs"]
)
def test_batch_commands_refuse_a_broken_model_before_writing(tmp_path, foramen_bin, scenes, models, kind):
    model = models[kind]
    cases = {
        "segment": (["segment", scenes / "images", "--model", model, "--out", tmp_path / "pred"], tmp_path / "pred"),
        "replay": (["replay", scenes / "images", "--model", model, "--out", tmp_path / "r.mp4"], tmp_path / "r.mp4"),
        "eval": (
            ["eval", "--data", scenes, "--list", "val.txt", "--model", model, "--out", tmp_path / "ev"],
            tmp_path / "ev" / "metrics.json",
        ),
    }
    for name, (args, output) in cases.items():
        r = run(foramen_bin, *args)
        assert r.returncode != 0, f"{name} accepted a model with {kind}:\n{r.stdout}{r.stderr}"
        assert str(model) in r.stderr, f"{name}: the message names the file:\n{r.stderr}"
        assert not output.exists() or (output.is_dir() and not any(output.iterdir())), (
            f"{name} wrote {output} for a model with {kind}"
        )


def test_live_keeps_the_video_and_says_why_with_a_broken_model(foramen_bin, models):
    r = live_until(
        foramen_bin,
        ["--device", "synthetic:4:160x96@25", "--exit-after-frames", "1500"]
        + ["--model", models["input size contradicts the graph"]],
        until=lambda line: "wrongsize.onnx" in line,
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    summary = r.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ frames, 0 masks", summary), log
    assert "AI faults" in summary and "wrongsize.onnx" in summary, log


def test_eval_names_a_mask_of_the_wrong_size_and_a_class_beyond_the_list(tmp_path, foramen_bin, scenes):
    for case in ("size", "class"):
        data = tmp_path / case
        subprocess.run(["cp", "-r", str(scenes), str(data)], check=True)
        lines = (data / "val.txt").read_text().split()
        mask_path = data / lines[1]
        mask = np.array(Image.open(mask_path))
        if case == "size":
            mask = mask[:-8, :]
        else:
            mask[0, 0] = 9
        Image.fromarray(mask).save(mask_path)
        out = tmp_path / f"ev-{case}"
        r = run(foramen_bin, "eval", "--data", data, "--list", "val.txt", "--out", out)
        assert r.returncode != 0, r.stdout + r.stderr
        assert mask_path.name in r.stderr, r.stderr
        assert not (out / "metrics.json").exists()


def test_a_cut_video_is_replayed_to_its_last_decodable_frame_with_a_warning(tmp_path, foramen_bin):
    # The demo with its index first (as a recorder streaming to disk writes it), cut in half.
    whole = tmp_path / "whole.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(REPO / "assets" / "demo.mp4"),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(whole),
        ],
        check=True,
    )
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    r = run(foramen_bin, "replay", cut, "--out", out, timeout=300)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    line = next(text for text in log.splitlines() if "cut or damaged" in text)
    read, announced = (int(w) for w in line.split("after ")[1].split(" frames")[0].split(" of the "))
    assert announced == 240 and 0 < read < 240, line
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert int(probe.stdout.strip()) == read, probe


def test_batch_commands_name_a_missing_input(tmp_path, foramen_bin, scenes):
    missing = tmp_path / "nowhere" / "input"
    cases = {
        "segment": ["segment", missing, "--out", tmp_path / "pred"],
        "replay": ["replay", missing, "--out", tmp_path / "r.mp4"],
        "eval": ["eval", "--data", missing, "--list", "val.txt", "--out", tmp_path / "ev"],
        "import": ["import", "label-studio", missing, "--images", scenes / "images", "--out", tmp_path / "ds"],
    }
    for name, args in cases.items():
        r = run(foramen_bin, *args)
        assert r.returncode != 0, f"{name}: {r.stdout}{r.stderr}"
        assert str(missing) in r.stderr, f"{name} names the missing input:\n{r.stderr}"
        for out in (tmp_path / "pred", tmp_path / "r.mp4", tmp_path / "ev" / "metrics.json", tmp_path / "ds"):
            assert not out.exists() or (out.is_dir() and not any(out.iterdir())), f"{name} wrote {out}"


def x86_without_vnni() -> bool:
    """What the runtime must find, read independently from /proc/cpuinfo."""
    if platform.machine() not in ("x86_64", "i686", "i386"):
        return False
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    return not ({"avx512_vnni", "avx_vnni"} & set(flags.split()))


def test_an_int8_model_with_8_bit_weights_runs_only_where_the_cpu_has_vnni(tmp_path, foramen_bin, scenes):
    bundled = REPO / "models" / "lumbar-synth.int8.onnx"
    proto = onnx.load(str(bundled))
    doc = json.loads({p.key: p.value for p in proto.metadata_props}["foramen"])
    # The bundled INT8 model says how it was quantized: 7-bit weights, safe on every CPU.
    assert doc["quantization"]["weight_bits"] == 7, doc.get("quantization")
    doc["quantization"]["weight_bits"] = 8
    for prop in proto.metadata_props:
        if prop.key == "foramen":
            prop.value = json.dumps(doc)
    full = tmp_path / "full-range.int8.onnx"
    onnx.save(proto, str(full))
    for model, runs in ((bundled, True), (full, not x86_without_vnni())):
        out = tmp_path / f"pred-{model.stem}"
        r = run(foramen_bin, "segment", scenes / "images", "--model", model, "--out", out)
        if runs:
            assert r.returncode == 0, r.stderr
            assert len(list(out.glob("*.png"))) == 20
        else:
            assert r.returncode != 0 and str(model) in r.stderr and "without VNNI" in r.stderr, r.stderr
            assert not out.exists() or not any(out.iterdir())
