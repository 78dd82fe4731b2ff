"""Tiny end-to-end run: train 2 epochs, export ONNX, check metadata and ONNX Runtime parity."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from foramen_train import evaluate, export, train
from foramen_train.frames import MEAN, STD
from foramen_train.model import ModelConfig, PPLiteSeg

from conftest import CLASSES, tiny_model

CONFIG = (
    """
[data]
root = "{root}"
[data.augment]
rotate_deg = 20.0
"""
    + tiny_model(width=96)
    + """[train]
epochs = 2
batch_size = 4
lr = 5e-3
[export]
description = "tiny test model"
parity_frames = 3
"""
)


@pytest.fixture(scope="module")
def run_dir(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    config = tmp / "tiny.toml"
    config.write_text(CONFIG.format(root=tiny_dataset))
    out = tmp / "out"
    assert train.main(["--config", str(config), "--out", str(out), "--no-progress", "--set", "train.seed=1"]) == 0
    return out


def test_run_folder_contents(run_dir):
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.toml",
        "metrics.csv",
        "best.pt",
        "model.onnx",
        "summary.json",
    }
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == [
        "epoch",
        "train_loss",
        "val_loss",
        "val_miou",
        "iou_background",
        "iou_bone",
        "iou_ligament",
        "iou_disc",
        "seconds",
    ]
    assert all(np.isfinite(float(r["train_loss"])) and 0 <= float(r["val_miou"]) <= 1 for r in rows)
    assert "train.seed=1" in (run_dir / "config.toml").read_text()


def test_onnx_contract_and_parity(run_dir):
    path = run_dir / "model.onnx"
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert set(props) == {"foramen", "classes"}
    assert props["classes"] == "background,bone,ligament,disc"
    meta = json.loads(props["foramen"])
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    assert meta["format"] == 1 and meta["name"] == "tiny-synth" and meta["description"] == "tiny test model"
    assert meta["classes"] == [{"index": i, "name": n, "color": list(c)} for i, (n, c) in enumerate(CLASSES)]
    assert meta["ignore_index"] == 255
    assert meta["input"] == {
        "name": "image",
        "width": 96,
        "height": 64,
        "layout": "NCHW",
        "color": "RGB",
        "scale": 255.0,
        "mean": list(MEAN),
        "std": list(STD),
        "resize": "stretch",
    }
    assert meta["output"] == {"name": "logits", "kind": "logits"}
    training = meta["training"]
    assert training["dataset"] == "tiny-synth" and training["epochs"] == ckpt["training"]["epoch"]
    assert training["val_miou"] == pytest.approx(ckpt["training"]["val_miou"])
    assert set(training["val_iou"]) <= {n for n, _ in CLASSES} and training["params"] > 0 and training["flops"] > 0
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert training["val_miou"] == pytest.approx(max(float(r["val_miou"]) for r in rows), abs=1e-6)
    assert proto.opset_import[0].version >= 17

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.shape[1:] == [3, 64, 96] and out.name == "logits"
    model, _ = export.load_checkpoint(run_dir / "best.pt")
    x = torch.randn(3, 3, 64, 96)
    (logits,) = session.run(["logits"], {"image": x.numpy()})  # batch is dynamic
    assert logits.shape == (3, 4, 64, 96)
    with torch.no_grad():
        ref = torch.softmax(model(x), 1)
    assert (torch.softmax(torch.from_numpy(logits), 1) - ref).abs().max() < 1e-4


def test_metadata_description_defaults_to_the_dataset(run_dir):
    _, ckpt = export.load_checkpoint(run_dir / "best.pt")
    assert export.metadata_document(ckpt)["description"] == "tiny synthetic set"
    assert export.metadata_document(ckpt, name="x", description="y")["name"] == "x"


def test_parity_check_fails_loudly(run_dir):
    model, _ = export.load_checkpoint(run_dir / "best.pt")
    with torch.no_grad():
        model.head[1].bias[0] += 3.0  # the ONNX file no longer matches these weights
    with pytest.raises(export.ExportError, match="softmax differ"):
        export.check_parity(model, run_dir / "model.onnx", torch.randn(1, 3, 64, 96))


def test_export_and_evaluate_clis(run_dir, tiny_dataset, capsys):
    out = run_dir / "again.onnx"
    assert export.main(["--checkpoint", str(run_dir / "best.pt"), "--out", str(out), "--static-batch"]) == 0
    assert ort.InferenceSession(str(out)).get_inputs()[0].shape == [1, 3, 64, 96]
    results = {}
    for model_path in (out, run_dir / "best.pt"):
        json_path = run_dir / f"eval-{model_path.stem}.json"
        args = ["--model", str(model_path), "--data-root", str(tiny_dataset), "--out", str(json_path), "--no-progress"]
        assert evaluate.main(args) == 0
        results[model_path.suffix] = json.loads(json_path.read_text())
    assert results[".onnx"]["frames"] == 4 and set(results[".onnx"]["iou"]) == {n for n, _ in CLASSES}
    assert results[".onnx"]["miou"] == pytest.approx(results[".pt"]["miou"], abs=1e-3)
    assert "mIoU" in capsys.readouterr().out


def test_refuses_non_empty_run_folder(run_dir, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(root=tmp_path))
    assert train.main(["--config", str(config), "--out", str(run_dir), "--no-progress"]) == 1


def test_int8_qdq_model_keeps_the_contract_and_the_classes(run_dir, tiny_dataset):
    from foramen_train import quantize

    fp32, int8 = run_dir / "model.onnx", run_dir / "model.int8.onnx"
    config = run_dir / "config.toml"
    assert (
        quantize.main(
            [
                "--model",
                str(fp32),
                "--config",
                str(config),
                "--data-root",
                str(tiny_dataset),
                "--out",
                str(int8),
                "--frames",
                "6",
            ]
        )
        == 0
    )
    proto = onnx.load(str(int8))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops, ops
    # The logits are upsampled in float and leave the model so, not requantized.
    last = [n for n in proto.graph.node if set(n.output) & {o.name for o in proto.graph.output}]
    assert [n.op_type for n in last] == ["Resize"], last
    meta = {p.key: p.value for p in proto.metadata_props}
    source = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    assert meta.keys() == source.keys()
    # The contract is the FP32 model's, plus how it was quantized (7-bit weights by default).
    doc = json.loads(meta[export.METADATA_KEY])
    assert doc.pop("quantization") == {
        "format": "QDQ",
        "weight_bits": 7,
        "depthwise_weight_bits": 8,
        "activations": "uint8",
        "calibration": "minmax",
        "calibration_frames": 6,
    }
    assert doc == json.loads(source[export.METADATA_KEY])
    assert int8.stat().st_size < 0.6 * fp32.stat().st_size
    # Same input and output contract, and nearly the same decisions on real frames.
    a, b = ort.InferenceSession(str(fp32)), ort.InferenceSession(str(int8))
    assert [(i.name, i.shape) for i in a.get_inputs()] == [(i.name, i.shape) for i in b.get_inputs()]
    assert [o.name for o in a.get_outputs()] == [o.name for o in b.get_outputs()]
    name = a.get_inputs()[0].name
    _, frames = quantize.calibration_tensors(fp32, tiny_dataset, "val.txt", 4)
    agree = [np.mean(a.run(None, {name: x})[0].argmax(1) == b.run(None, {name: x})[0].argmax(1)) for x in frames]
    assert min(agree) > 0.9, agree


def quantize_args(run_dir, dataset, out, *extra):
    """`foramen_train.quantize` arguments for the run's model on 4 frames of ``dataset``."""
    paths = {"--model": run_dir / "model.onnx", "--config": run_dir / "config.toml", "--data-root": dataset}
    return [*(str(x) for kv in {**paths, "--out": out}.items() for x in kv), "--frames", "4", *extra]


def int8_weight_extremes(path: Path) -> dict[str, tuple[int, int]]:
    """The smallest and largest INT8 weight of the model at ``path``, for its depthwise
    convolutions (``depthwise``) and for every other layer (``other``)."""
    proto = onnx.load(str(path))
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    dequantized = {n.output[0]: n.input[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    depthwise = set()
    for node in proto.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight = dequantized.get(node.input[1]) if node.op_type == "Conv" else None
        if weight in weights and group > 1 and weights[weight].shape[1] == 1:
            depthwise.add(weight)
    extremes = {}
    int8 = {name: w for name, w in weights.items() if w.dtype == np.int8}
    for kind in ("depthwise", "other"):
        found = [w for name, w in int8.items() if (name in depthwise) == (kind == "depthwise")]
        assert found, f"no INT8 {kind} weights in {path}"
        extremes[kind] = (min(int(w.min()) for w in found), max(int(w.max()) for w in found))
    return extremes


def test_reduce_range_keeps_int8_weights_in_7_bits_but_depthwise_ones_in_8(run_dir, tiny_dataset, tmp_path):
    """Weights within +-64 (7 bits) by default and with `--reduce-range`, so u8 x s8 sums cannot
    saturate on CPUs without VNNI; depthwise weights in 8 bits unless `--depthwise-bits 7`
    (ONNX Runtime's depthwise kernel adds in 32 bits); everything in 8 bits only with
    `--full-range`. The contract says which."""
    from foramen_train import quantize

    outs, bits = {}, {}
    for flag in (["--full-range"], [], ["--reduce-range"], ["--depthwise-bits", "7"]):
        out = tmp_path / f"m{''.join(flag)}.onnx"
        assert quantize.main(quantize_args(run_dir, tiny_dataset, out, *flag)) == 0
        key = " ".join(flag) or "default"
        outs[key] = int8_weight_extremes(out)
        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        q = json.loads(props[export.METADATA_KEY])["quantization"]
        bits[key] = (q["weight_bits"], q["depthwise_weight_bits"])

    def within_7_bits(extremes):
        return -64 <= extremes[0] and extremes[1] <= 64

    assert not within_7_bits(outs["--full-range"]["other"]), outs
    for key in ("default", "--reduce-range"):
        assert within_7_bits(outs[key]["other"]) and not within_7_bits(outs[key]["depthwise"]), outs
    assert within_7_bits(outs["--depthwise-bits 7"]["other"]) and within_7_bits(outs["--depthwise-bits 7"]["depthwise"])
    assert bits == {"--full-range": (8, 8), "default": (7, 8), "--reduce-range": (7, 8), "--depthwise-bits 7": (7, 7)}


def test_quantize_names_a_model_without_metadata(run_dir, tiny_dataset, tmp_path, capsys):
    from foramen_train import quantize

    bare = onnx.load(str(run_dir / "model.onnx"))
    del bare.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(bare, str(path))
    assert (
        quantize.main(
            [
                "--model",
                str(path),
                "--config",
                str(run_dir / "config.toml"),
                "--data-root",
                str(tiny_dataset),
                "--out",
                str(tmp_path / "q.onnx"),
            ]
        )
        == 1
    )
    assert str(path) in capsys.readouterr().err


def test_packed_checkpoint_is_smaller_and_the_same_model(run_dir, tmp_path):
    from foramen_train import pack

    packed = tmp_path / "packed.pt"
    assert pack.main(["--from", str(run_dir / "best.pt"), "--out", str(packed)]) == 0
    assert packed.stat().st_size < 0.6 * (run_dir / "best.pt").stat().st_size
    state = torch.load(packed, weights_only=True)["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point() and v.dim() > 1} == {torch.float16}
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point() and v.dim() == 1)
    # Loading casts back to float32; the outputs agree to half precision's rounding.
    full, _ = export.load_checkpoint(run_dir / "best.pt")
    half, _ = export.load_checkpoint(packed)
    assert all(p.dtype == torch.float32 for p in half.parameters())
    x = torch.rand(2, 3, full.cfg.height, full.cfg.width)
    with torch.no_grad():
        a, b = full(x).softmax(1), half(x).softmax(1)
    assert (a - b).abs().max() < 1e-2
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.99


def test_pack_refuses_its_input_as_output_and_names_a_bad_file(run_dir, tmp_path, capsys):
    from foramen_train import pack

    best = run_dir / "best.pt"
    before = best.read_bytes()
    assert pack.main(["--from", str(best), "--out", str(best)]) == 1
    assert "is the input checkpoint" in capsys.readouterr().err
    assert best.read_bytes() == before
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    assert pack.main(["--from", str(junk), "--out", str(tmp_path / "o.pt")]) == 1
    err = capsys.readouterr().err
    assert str(junk) in err and "not readable" in err
    assert not (tmp_path / "o.pt").exists()


def test_evaluate_averages_several_models_and_refuses_mixed_contracts(run_dir, tiny_dataset, tmp_path, capsys):
    one = run_dir / "ens.onnx"
    assert export.main(["--checkpoint", str(run_dir / "best.pt"), "--out", str(one)]) == 0
    base = ["--data-root", str(tiny_dataset), "--no-progress", "--out"]
    assert evaluate.main(["--model", str(one), *base, str(tmp_path / "a.json")]) == 0
    # A model averaged with itself (ONNX and its own checkpoint) is that model.
    assert (
        evaluate.main(["--model", str(one), "--model", str(run_dir / "best.pt"), *base, str(tmp_path / "b.json")]) == 0
    )
    single, pair = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert pair["models"] == [str(one), str(run_dir / "best.pt")]
    assert pair["miou"] == pytest.approx(single["miou"], abs=1e-3)
    # Another class list: refused, naming the model and the key.
    proto = onnx.load(str(one))
    for prop in proto.metadata_props:
        if prop.key == export.METADATA_KEY:
            doc = json.loads(prop.value)
            doc["classes"][1]["name"] = "renamed"
            prop.value = json.dumps(doc)
    other = tmp_path / "other.onnx"
    onnx.save(proto, str(other))
    assert evaluate.main(["--model", str(one), "--model", str(other), *base, str(tmp_path / "c.json")]) == 1
    err = capsys.readouterr().err
    assert str(other) in err and "'classes'" in err
    assert not (tmp_path / "c.json").exists()


def test_fpn_decoder_exports_and_reloads_with_parity(run_dir, tmp_path):
    _, ckpt = export.load_checkpoint(run_dir / "best.pt")
    cfg = ModelConfig(**{**ckpt["model_config"], "decoder": "fpn", "fpn_channels": 16})
    model = PPLiteSeg(cfg).eval()
    ckpt = {**ckpt, "model_config": dataclasses.asdict(cfg), "state_dict": model.state_dict()}
    torch.save(ckpt, tmp_path / "fpn.pt")
    reloaded, _ = export.load_checkpoint(tmp_path / "fpn.pt")
    x = torch.randn(2, 3, cfg.height, cfg.width)
    with torch.no_grad():
        assert torch.equal(reloaded(x), model(x))
    export.export_onnx(reloaded, ckpt, tmp_path / "fpn.onnx")
    assert export.check_parity(reloaded, tmp_path / "fpn.onnx", x) < 1e-4
    ops = {node.op_type for node in onnx.load(str(tmp_path / "fpn.onnx")).graph.node}
    assert "Sigmoid" not in ops  # no UAFM attention in the graph: the FPN replaced it


def test_fidelity_of_a_model_to_itself_and_to_its_int8_variant(run_dir, tiny_dataset, tmp_path, capsys):
    from foramen_train import fidelity, quantize

    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    assert export.main(["--checkpoint", str(run_dir / "best.pt"), "--out", str(fp32)]) == 0
    args = ["--model", str(fp32), "--config", str(run_dir / "config.toml"), "--data-root", str(tiny_dataset)]
    assert quantize.main([*args, "--out", str(int8), "--frames", "4"]) == 0
    base = ["--data-root", str(tiny_dataset), "--no-progress", "--reference", str(fp32)]
    # A model against itself (its ONNX export and its checkpoint): the same picture.
    same = tmp_path / "same.json"
    assert (
        fidelity.main([*base, "--model", str(run_dir / "best.pt"), "--min-agreement", "0.999", "--out", str(same)]) == 0
    )
    s = json.loads(same.read_text())
    assert s["agreement"] > 0.999 and s["miou"] == pytest.approx(s["reference_miou"], abs=1e-3)
    # INT8: the counts are every pixel of every frame, rows the reference's classes; the
    # IoUs are evaluate's, and the share is the matrix's trace.
    out = tmp_path / "int8.json"
    assert fidelity.main([*base, "--model", str(int8), "--out", str(out)]) == 0
    f = json.loads(out.read_text())
    m = np.array(f["model_vs_reference"])
    assert m.sum() == 4 * 64 * 64 and f["agreement"] == pytest.approx(np.trace(m) / m.sum())
    for i, c in enumerate(CLASSES):
        share = f["agreement_by_reference_class"][c[0]]
        assert share is None if m[i].sum() == 0 else share == pytest.approx(m[i, i] / m[i].sum())
    assert (
        evaluate.main(
            ["--model", str(int8), "--data-root", str(tiny_dataset), "--no-progress", "--out", str(tmp_path / "e.json")]
        )
        == 0
    )
    assert f["miou"] == pytest.approx(json.loads((tmp_path / "e.json").read_text())["miou"])
    # A gate it cannot pass fails, names the figures and still writes the report.
    gate = tmp_path / "gate.json"
    assert fidelity.main([*base, "--model", str(int8), "--min-agreement", "1.0", "--out", str(gate)]) == (
        1 if f["agreement"] < 1.0 else 0
    )
    assert gate.exists()
    if f["agreement"] < 1.0:
        assert "under --min-agreement 1.0" in capsys.readouterr().err


def test_fidelity_refuses_models_with_different_contracts(run_dir, tiny_dataset, tmp_path, capsys):
    from foramen_train import fidelity

    proto = onnx.load(str(run_dir / "model.onnx"))
    for prop in proto.metadata_props:
        if prop.key == export.METADATA_KEY:
            doc = json.loads(prop.value)
            doc["input"]["width"] = 48
            prop.value = json.dumps(doc)
    other = tmp_path / "other.onnx"
    onnx.save(proto, str(other))
    out = tmp_path / "f.json"
    base = ["--data-root", str(tiny_dataset), "--no-progress", "--out", str(out)]
    assert fidelity.main(["--reference", str(run_dir / "model.onnx"), "--model", str(other), *base]) == 1
    err = capsys.readouterr().err
    assert str(other) in err and "'input'" in err
    assert not out.exists()


def test_flip_averaging_is_mirror_symmetric_and_changes_nothing_for_a_symmetric_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 6, 10)).astype(np.float32)
    ramp = np.linspace(-2, 2, 10, dtype=np.float32)

    def lopsided(frame):  # favours class 0 on the left: not mirror-symmetric itself
        return np.concatenate([frame[:, :2] + ramp, frame[:, 2:]], axis=1)

    tta = evaluate.flip_predictor(lopsided)
    assert np.allclose(tta(np.ascontiguousarray(x[..., ::-1])), tta(x)[..., ::-1], atol=1e-6)
    assert not np.allclose(tta(x).argmax(1), lopsided(x).argmax(1))

    def symmetric(frame):
        return frame * 3.0

    plain = torch.from_numpy(symmetric(x)).log_softmax(1).numpy()
    assert np.allclose(evaluate.flip_predictor(symmetric)(x), plain, atol=1e-5)


def test_keep_float_leaves_the_named_layers_unquantized_and_says_so(run_dir, tiny_dataset, tmp_path, capsys):
    from foramen_train import quantize

    out = tmp_path / "mixed.onnx"
    assert quantize.main(quantize_args(run_dir, tiny_dataset, out, "--keep-float", "head.1")) == 0
    proto = onnx.load(str(out))
    int8 = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    floats = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    assert "head.1.weight" in floats and not any(name.startswith("head.1.") for name in int8)
    assert any(name.startswith("head.0.") for name in int8), sorted(int8)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props[export.METADATA_KEY])["quantization"]["float_layers"] == ["head.1"]
    # A prefix that names no layer is refused, naming it, and nothing is written.
    missing = tmp_path / "missing.onnx"
    assert quantize.main(quantize_args(run_dir, tiny_dataset, missing, "--keep-float", "decoder.nope")) == 1
    err = capsys.readouterr().err
    assert "--keep-float decoder.nope" in err and str(run_dir / "model.onnx") in err
    assert not missing.exists()


def test_panels_draw_each_frame_with_its_truth_and_the_model(run_dir, tiny_dataset, tmp_path, capsys):
    from PIL import Image

    from foramen_train import panels
    from foramen_train.dataset_spec import DatasetSpec

    out = tmp_path / "fig" / "panels.png"
    frames = ["images/val000.png", "images/train001.png"]
    args = ["--data", str(tiny_dataset), "--list", "val.txt", "--list", "train.txt", "--width", "64"]
    model = ["--model", str(run_dir / "model.onnx")]
    assert panels.main([*args, *(x for f in frames for x in ("--frame", f)), *model, "--out", str(out)]) == 0
    figure = Image.open(out)
    # Two rows of caption + three 64x64 panels (frame, truth, model), then the legend.
    assert figure.size == (3 * 64, 2 * (64 + panels.LABEL_PX) + panels.LABEL_PX + 4)
    # Blending: a scored class's colour at alpha, ignored classes left as they are.
    meta = evaluate.read_onnx_metadata(run_dir / "model.onnx")
    spec = DatasetSpec.from_dict({**meta, "ignore_classes": [meta["classes"][0]["name"]]})
    rgb = np.full((1, 2, 3), 100, dtype=np.uint8)
    blended = panels.overlay(rgb, np.array([[0, 1]], dtype=np.uint8), spec, 0.5)
    colour = np.array(spec.classes[1].color)
    assert blended[0, 0].tolist() == [100, 100, 100]
    assert blended[0, 1].tolist() == np.round(100 * 0.5 + colour * 0.5).astype(int).tolist()
    # A frame that no list names, or a figure that is not an image: an error, nothing written.
    bad = tmp_path / "bad.png"
    assert panels.main([*args, "--frame", "images/nope.png", *model, "--out", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "val.txt" in err and "images/nope.png" in err, err
    assert panels.main([*args, "--frame", frames[0], *model, "--out", str(tmp_path / "f.txt")]) == 1
    assert not bad.exists() and not (tmp_path / "f.txt").exists()
