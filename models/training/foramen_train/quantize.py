"""INT8 variant of an exported model: ONNX Runtime static quantization, QDQ format.

Activations are calibrated on training frames (never validation frames), preprocessed
exactly as the Rust runtime and the recipe do (RGB, PIL bilinear resize to the model
input, x/255, ImageNet mean/std). Weights are per-channel signed, activations unsigned
8-bit: the U8S8 form that ONNX Runtime runs with AVX-512 VNNI (and AMX where the CPU has
it). By default the weights use 7 bits (``--reduce-range``): x86 CPUs without VNNI
(AVX2 only) add u8*s8 products in pairs into 16 bits, which full 8-bit weights overflow
(an earlier Lite0 model scored 0.500 mIoU that way). Depthwise convolutions keep 8 bits
even then (``--depthwise-bits 8``, the default): ONNX Runtime runs them with their own
kernel, which widens both operands to 16 bits and adds in 32 (MLAS ``qdwconv``), so
nothing saturates on any CPU, and their 9 weights a channel are where 7 bits cost most.
``--full-range`` keeps 8 bits everywhere, closer to FP32 (vocalfolds: 99.2 % of pixels
agree against 97.7 % all at 7 bits, ``foramen_train.fidelity``), for CPUs with VNNI, ARM
or GPUs. ``--keep-float PREFIX`` leaves the layers whose weights' names start with PREFIX
in float: the bundled vocalfolds model keeps its encoder's stem and blocks 0-1 so, which
with 8-bit depthwise weights brings agreement to 99.4 % (``make quantize``). The
Foramen metadata of the FP32 model is carried over, plus a ``quantization`` entry
(format, weight bits, calibration, float layers) that the Rust runtime
reads: it refuses an 8-bit model on an x86 CPU without VNNI instead of drawing garbage.

CLI (from ``models/training``)::

    python -m foramen_train.quantize --model ../vocalfolds.onnx --config configs/vocalfolds.toml \\
        --out ../vocalfolds.int8.onnx [--frames 64] [--method minmax|entropy|percentile] [--full-range] \\
        [--depthwise-bits 8|7] [--keep-float PREFIX ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from .config import ConfigError, load_config
from .dataset_spec import DataError
from .export import METADATA_KEY
from .frames import evenly_spaced, load_image, normalize, read_list


class QuantizeError(RuntimeError):
    """A model or data problem, naming the file."""


def calibration_tensors(model: Path, root: Path, list_name: str, frames: int) -> tuple[str, list[np.ndarray]]:
    """The model's input name and ``frames`` preprocessed training frames (1, 3, H, W)."""
    proto = onnx.load(str(model), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in meta:
        raise QuantizeError(f"{model}: no '{METADATA_KEY}' metadata (not exported by the recipe)")
    spec = json.loads(meta[METADATA_KEY])["input"]
    width, height = int(spec["width"]), int(spec["height"])
    pairs = evenly_spaced(read_list(root, list_name), frames)
    if not pairs:
        raise QuantizeError(f"{root / list_name}: no frames to calibrate on")
    tensors = []
    for image_path, _ in pairs:
        rgb = load_image(image_path)
        resized = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))
        tensors.append(normalize(resized, (tuple(spec["mean"]), tuple(spec["std"])))[None].astype(np.float32))
    return spec.get("name", proto.graph.input[0].name), tensors


def float_nodes(model: onnx.ModelProto, prefixes: list[str], source: Path) -> list[str]:
    """Names of the nodes whose weights (initializers) start with one of ``prefixes``,
    e.g. ``head.1`` for the classifier; a prefix that matches nothing is an error naming
    ``source``, the model it came from."""
    weights = {init.name for init in model.graph.initializer}
    names = []
    for prefix in prefixes:
        found = [
            node.name
            for node in model.graph.node
            if any(name in weights and name.startswith(prefix) for name in node.input)
        ]
        if not found:
            raise QuantizeError(f"{source}: --keep-float {prefix}: no layer's weights start with it")
        names += [name for name in found if name not in names]
    return names


def depthwise_weights(model: onnx.ModelProto) -> list[str]:
    """Names of the weights of ``model``'s depthwise convolutions (one input channel per
    group, as many groups as channels): the layers ONNX Runtime runs with its depthwise
    kernel, exact at 8 bits on every CPU."""
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in shapes:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        shape = shapes[node.input[1]]
        if group > 1 and len(shape) == 4 and shape[0] == group and shape[1] == 1:
            names.append(node.input[1])
    return names


def output_resizes(model: onnx.ModelProto) -> list[str]:
    """Names of the Resize nodes that produce ``model``'s outputs (the logits upsampled to
    the input size). They stay in float: quantized, the upsampled logits were rounded
    back onto the classifier's 8-bit grid and dequantized again, a rounding step that
    bought nothing and cost time (vocalfolds: 0.3 ms of 10 on an AVX2 CPU; the same
    99.39 % of val pixels agree with FP32 either way)."""
    outputs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node if n.op_type == "Resize" and outputs & set(n.output)]


def _calibration_reader(input_name: str, tensors: list[np.ndarray]):
    """An ONNX Runtime calibration reader that feeds ``tensors`` one at a time as ``input_name``."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(tensors)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {input_name: x}

    return Reader()


def _quantize_static(
    model: Path,
    out: Path,
    reader,
    method: str,
    reduce_range: bool,
    keep_float: list[str] | None,
    depthwise_bits: int = 8,
) -> None:
    """Write the QDQ INT8 form of ``model`` to ``out``, calibrated on ``reader``'s frames;
    layers whose weights start with a prefix in ``keep_float`` stay in float; with
    ``reduce_range``, depthwise weights keep ``depthwise_bits``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and graph fusions first, as ONNX Runtime's guide asks.
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared))
        excluded = float_nodes(graph, keep_float or [], model) + output_resizes(graph)
        overrides = {}
        if reduce_range and depthwise_bits == 8:
            # Per channel (axis 0), 8 bits: ONNX Runtime's depthwise kernel cannot saturate.
            overrides = {name: [{"axis": 0, "reduce_range": False}] for name in depthwise_weights(graph)}
        quantize_static(
            str(prepared),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            reduce_range=reduce_range,
            nodes_to_exclude=excluded,
            extra_options={"TensorQuantOverrides": overrides} if overrides else {},
        )


def _carry_metadata(model: Path, out: Path, quantization: dict) -> None:
    """Give the INT8 model at ``out`` the metadata of the FP32 ``model``, with ``quantization``
    added to the Foramen entry, and save it after the ONNX checker has passed it."""
    source = onnx.load(str(model), load_external_data=False)
    result = onnx.load(str(out))
    del result.metadata_props[:]
    for prop in source.metadata_props:
        entry = result.metadata_props.add()
        entry.key, entry.value = prop.key, prop.value
        if prop.key == METADATA_KEY:
            # The runtime reads this: 8-bit weights saturate on x86 CPUs without VNNI.
            entry.value = json.dumps({**json.loads(prop.value), "quantization": quantization})
    onnx.checker.check_model(result)
    onnx.save(result, str(out))


def quantize(
    model: Path,
    out: Path,
    root: Path,
    list_name: str,
    frames: int,
    method: str,
    reduce_range: bool = False,
    keep_float: list[str] | None = None,
    depthwise_bits: int = 8,
) -> dict:
    """Write the INT8 QDQ model to ``out``; return a summary. Layers whose weights start
    with a prefix in ``keep_float`` stay in float; depthwise weights keep
    ``depthwise_bits`` (8 or 7) when the others use 7."""
    if depthwise_bits not in (7, 8):
        raise QuantizeError(f"--depthwise-bits {depthwise_bits}: 7 or 8")
    input_name, tensors = calibration_tensors(model, root, list_name, frames)
    reader = _calibration_reader(input_name, tensors)
    _quantize_static(model, out, reader, method, reduce_range, keep_float, depthwise_bits)
    weight_bits = 7 if reduce_range else 8
    quantization = {
        "format": "QDQ",
        "weight_bits": weight_bits,
        "depthwise_weight_bits": depthwise_bits if reduce_range else weight_bits,
        "activations": "uint8",
        "calibration": method,
        "calibration_frames": len(tensors),
    }
    if keep_float:
        quantization["float_layers"] = list(keep_float)
    _carry_metadata(model, out, quantization)
    return {
        "model": str(model),
        "out": str(out),
        "calibration_frames": len(tensors),
        "method": method,
        "weight_bits": quantization["weight_bits"],
        "depthwise_weight_bits": quantization["depthwise_weight_bits"],
        "float_layers": list(keep_float or []),
        "fp32_bytes": model.stat().st_size,
        "int8_bytes": out.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="FP32 model exported by the recipe")
    parser.add_argument("--config", type=Path, required=True, help="its training config (data set and list)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=64, help="training frames to calibrate on")
    parser.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="minmax")
    parser.add_argument("--data-root", type=Path, help="override the config's data.root")
    bits = parser.add_mutually_exclusive_group()
    bits.add_argument(
        "--reduce-range",
        dest="reduce_range",
        action="store_true",
        default=True,
        help="7-bit weights (the default): no u8*s8 overflow on x86 CPUs without VNNI (AVX2 only)",
    )
    bits.add_argument(
        "--full-range",
        dest="reduce_range",
        action="store_false",
        help="8-bit weights: closer to FP32, but only for CPUs with VNNI, ARM or a GPU (Foramen refuses "
        "such a model on an x86 CPU without VNNI, where u8*s8 sums saturate)",
    )
    parser.add_argument(
        "--depthwise-bits",
        type=int,
        choices=(8, 7),
        default=8,
        help="bits of the depthwise convolutions' weights with --reduce-range: 8 (the default; ONNX Runtime's "
        "depthwise kernel adds in 32 bits on every CPU) or 7 (as the other layers)",
    )
    parser.add_argument(
        "--keep-float",
        action="append",
        default=[],
        metavar="PREFIX",
        help="leave the layers whose weights start with PREFIX in float (e.g. head.1, the classifier); repeatable",
    )
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        root = args.data_root or cfg.data_root()
        summary = quantize(
            args.model,
            args.out,
            Path(root),
            cfg.data.train_list,
            args.frames,
            args.method,
            args.reduce_range,
            args.keep_float,
            args.depthwise_bits,
        )
    except (ConfigError, DataError, QuantizeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
