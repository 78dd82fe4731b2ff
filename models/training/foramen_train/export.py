"""Export a training checkpoint to ONNX with the metadata the Foramen runtime reads.

Contract (see the README): input ``image`` float32 ``[N, 3, H, W]`` (N dynamic unless
disabled), normalised RGB; output ``logits`` float32 ``[N, C, H, W]``; the metadata key
``foramen`` holds a JSON document describing classes, preprocessing and training
results, and the key ``classes`` lists the class names for humans.

After writing the file, ONNX Runtime (CPU) must reproduce PyTorch's softmax on a few
validation frames within a tolerance, otherwise :class:`ExportError` is raised.

CLI::

    python -m foramen_train.export --checkpoint RUN/best.pt --out model.onnx
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import onnx
import torch

from . import encoders
from .data import SegmentationDataset
from .dataset_spec import DataError, DatasetSpec
from .frames import evenly_spaced, read_list
from .model import ModelConfig, PPLiteSeg

METADATA_KEY = "foramen"
"""ONNX metadata_props key holding the JSON document."""
METADATA_FORMAT = 1
"""Version of the JSON document's layout."""
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


class ExportError(RuntimeError):
    """The exported graph is unusable or disagrees with PyTorch."""


def load_checkpoint(path: Path) -> tuple[PPLiteSeg, dict[str, Any]]:
    """Rebuild the model of a ``best.pt`` checkpoint (eval mode) and return it with the checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model_config", "state_dict", "dataset", "training", "config"):
        if key not in ckpt:
            raise ExportError(f"{path}: not a foramen_train checkpoint (missing {key!r})")
    model = PPLiteSeg(ModelConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt


def metadata_document(ckpt: dict[str, Any], name: str = "", description: str = "") -> dict[str, Any]:
    """The JSON document stored under the ``foramen`` metadata key.

    ``name`` defaults to the dataset's name, ``description`` to the dataset's description.
    """
    mcfg, ds, tr = ckpt["model_config"], ckpt["dataset"], ckpt["training"]
    mean, std = encoders.normalization(mcfg.get("encoder", encoders.STDC))
    return {
        "format": METADATA_FORMAT,
        "name": name or ds["name"],
        "description": description or ds.get("description", ""),
        "classes": [{"index": c["index"], "name": c["name"], "color": list(c["color"])} for c in ds["classes"]],
        "ignore_index": ds["ignore_index"],
        # Truth classes that evaluation leaves out (unannotated gaps, as Cityscapes' void);
        # `foramen eval` with this model picks them up.
        "ignore_classes": list(ds.get("ignore_classes", [])),
        "input": {
            "name": INPUT_NAME,
            "width": mcfg["width"],
            "height": mcfg["height"],
            "layout": "NCHW",
            "color": "RGB",
            "scale": 255.0,
            "mean": list(mean),
            "std": list(std),
            "resize": "stretch",
        },
        "output": {"name": OUTPUT_NAME, "kind": "logits"},
        "training": {
            "dataset": ds["name"],
            "encoder": mcfg.get("encoder", encoders.STDC),
            "epochs": tr["epoch"],
            "val_miou": tr["val_miou"],
            "val_iou": dict(tr["val_iou"]),
            "params": tr["params"],
            "flops": tr["flops"],
        },
    }


def export_onnx(
    model: PPLiteSeg,
    ckpt: dict[str, Any],
    out: Path,
    *,
    opset: int = 18,
    dynamic_batch: bool = True,
    name: str = "",
    description: str = "",
) -> dict[str, Any]:
    """Write ``out`` (a single self-contained file) and return its metadata document."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    model.eval()
    # torch.export specialises a dimension of size 1, so trace a batch of 2 when it is dynamic.
    example = torch.zeros(2 if dynamic_batch else 1, 3, cfg.height, cfg.width)
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    try:
        torch.onnx.export(
            model,
            (example,),
            str(out),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=True,
            external_data=False,
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
    except Exception as err:  # the exporter raises many unrelated types
        raise ExportError(f"{out}: torch.onnx.export failed: {err}") from err
    doc = metadata_document(ckpt, name=name, description=description)
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    for key, value in ((METADATA_KEY, json.dumps(doc)), ("classes", ",".join(c["name"] for c in doc["classes"]))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "foramen_train"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return doc


def check_parity(model: PPLiteSeg, onnx_path: Path, frames: torch.Tensor, tol: float = 1e-4) -> float:
    """Compare ONNX Runtime (CPU) with PyTorch on ``frames`` ``(N, 3, H, W)``, one at a time.

    Checks input/output names and shapes, then the softmax of the logits. Returns the
    largest absolute softmax difference; raises :class:`ExportError` above ``tol``.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
        raise ExportError(
            f"{onnx_path}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, got "
            f"{[i.name for i in inputs]} -> {[o.name for o in outputs]}"
        )
    worst = 0.0
    model.eval()
    for i in range(frames.shape[0]):
        x = frames[i : i + 1].contiguous()
        (ort_logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        with torch.no_grad():
            ref = model(x)
        if tuple(ort_logits.shape) != tuple(ref.shape):
            raise ExportError(f"{onnx_path}: ONNX output shape {ort_logits.shape}, PyTorch {tuple(ref.shape)}")
        diff = (torch.softmax(torch.from_numpy(ort_logits), 1) - torch.softmax(ref, 1)).abs().max().item()
        worst = max(worst, diff)
    if not worst < tol:
        raise ExportError(f"{onnx_path}: ONNX Runtime and PyTorch softmax differ by {worst:.3g} (limit {tol:g})")
    return worst


def parity_frames(
    ckpt: dict[str, Any], count: int, data_root: Path | None = None, list_name: str | None = None
) -> tuple[torch.Tensor, str]:
    """Up to ``count`` preprocessed validation frames of the checkpoint's dataset.

    Falls back to seeded random inputs (saying so in the returned description) when the
    dataset is not available on this machine.
    """
    mcfg = ckpt["model_config"]
    root = Path(data_root or ckpt["config"]["data"]["root"])
    list_name = list_name or ckpt["config"]["data"]["val_list"]
    try:
        pairs = evenly_spaced(read_list(root, list_name), count)
    except DataError as err:
        generator = torch.Generator().manual_seed(0)
        frames = torch.randn(count, 3, mcfg["height"], mcfg["width"], generator=generator)
        return frames, f"{count} random frames (validation data unavailable: {err})"
    spec = DatasetSpec.from_dict(ckpt["dataset"])
    dataset = SegmentationDataset(
        pairs,
        spec,
        mcfg["width"],
        mcfg["height"],
        augment=None,
        cache_max_mb=0,
        normalization=encoders.normalization(mcfg.get("encoder", encoders.STDC)),
    )
    return torch.stack([dataset[i][0] for i in range(len(dataset))]), f"{len(dataset)} frames of {root / list_name}"


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    *,
    opset: int | None = None,
    name: str | None = None,
    description: str | None = None,
    dynamic_batch: bool | None = None,
    frames: int | None = None,
    tol: float | None = None,
    data_root: Path | None = None,
    list_name: str | None = None,
) -> dict[str, Any]:
    """Export ``checkpoint`` to ``out`` and verify it; arguments left ``None`` come from
    the checkpoint's ``[export]`` settings. Returns the metadata document."""
    model, ckpt = load_checkpoint(checkpoint)
    settings = ckpt["config"]["export"]
    doc = export_onnx(
        model,
        ckpt,
        out,
        opset=opset if opset is not None else settings["opset"],
        dynamic_batch=dynamic_batch if dynamic_batch is not None else settings["dynamic_batch"],
        name=name if name is not None else settings["name"],
        description=description if description is not None else settings["description"],
    )
    count = frames if frames is not None else settings["parity_frames"]
    batch, what = parity_frames(ckpt, count, data_root, list_name)
    worst = check_parity(model, out, batch, tol if tol is not None else settings["parity_tol"])
    print(
        f"exported {out} ({out.stat().st_size / 1e6:.2f} MB); "
        f"ONNX Runtime parity on {what}: max |dsoftmax| = {worst:.2e}"
    )
    return doc


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="best.pt of a training run")
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--opset", type=int, help="ONNX opset (>= 17; default from the checkpoint's config)")
    parser.add_argument("--name", help="model name in the metadata (default: the dataset name)")
    parser.add_argument("--description", help="description in the metadata")
    parser.add_argument("--static-batch", action="store_true", help="fix the batch dimension to 1")
    parser.add_argument("--frames", type=int, help="validation frames for the parity check")
    parser.add_argument("--tol", type=float, help="largest allowed softmax difference (default 1e-4)")
    parser.add_argument(
        "--data-root", type=Path, help="dataset folder for the parity frames (default: the training one)"
    )
    parser.add_argument(
        "--list", dest="list_name", help="list file for the parity frames (default: the validation list)"
    )
    args = parser.parse_args(argv)
    if args.opset is not None and args.opset < 17:
        parser.error("--opset must be >= 17")
    try:
        export_checkpoint(
            args.checkpoint,
            args.out,
            opset=args.opset,
            name=args.name,
            description=args.description,
            dynamic_batch=False if args.static_batch else None,
            frames=args.frames,
            tol=args.tol,
            data_root=args.data_root,
            list_name=args.list_name,
        )
    except (ExportError, FileNotFoundError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
