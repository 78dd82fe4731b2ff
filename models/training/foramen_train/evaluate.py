"""Evaluate an exported ONNX model or a training checkpoint on a list of frames.

Each frame is preprocessed as the runtime does (stretch resize to the model input,
normalisation), the logits are resized (bilinear) back to the mask's own resolution and
compared with it there, so the numbers describe the overlay a user sees. (Training
validation compares at the model input size instead, for speed, so its mIoU can differ
slightly.)

CLI::

    python -m foramen_train.evaluate --model RUN/model.onnx --data-root DIR [--list val.txt] [--out eval.json]
    python -m foramen_train.evaluate --model RUN/best.pt [--list val.txt]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from .dataset_spec import DataError, DatasetSpec
from .export import METADATA_KEY, ExportError, load_checkpoint, metadata_document
from .frames import evenly_spaced, load_image, load_mask, read_list
from .metrics import ConfusionMatrix

Predictor = Callable[[np.ndarray], np.ndarray]
"""Maps a normalised ``float32 (1, 3, H, W)`` frame to ``float32 (1, C, H, W)`` logits."""


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    """The ``foramen`` metadata document of an ONNX file."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ExportError(f"{path}: no {METADATA_KEY!r} metadata (not exported by foramen_train?)")
    try:
        return json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise ExportError(f"{path}: metadata {METADATA_KEY!r} is not valid JSON: {err}") from err


def onnx_predictor(path: Path, threads: int) -> tuple[Predictor, dict[str, Any]]:
    """An ONNX Runtime (CPU) predictor and the model's metadata document."""
    import onnxruntime as ort

    meta = read_onnx_metadata(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name, output_name = meta["input"]["name"], meta["output"]["name"]
    return (lambda x: session.run([output_name], {input_name: x})[0]), meta


def checkpoint_predictor(path: Path) -> tuple[Predictor, dict[str, Any], dict[str, Any]]:
    """A PyTorch predictor, the metadata document it would export with, and the checkpoint."""
    model, ckpt = load_checkpoint(path)

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    return predict, metadata_document(ckpt), ckpt


def ensemble_predictor(members: list[tuple[Path, Predictor, dict[str, Any]]]) -> tuple[Predictor, dict[str, Any]]:
    """One predictor averaging the class probabilities of several models (a seed ensemble);
    it returns the log of the mean softmax, so its argmax is the ensemble's class. The
    members must share the contract's classes, ignored classes and input (size and
    normalisation), since every frame is preprocessed once; the error names the first
    model that differs and what."""
    first_path, _, first = members[0]
    for path, _, meta in members[1:]:
        for key in ("classes", "ignore_classes", "input"):
            if meta.get(key) != first.get(key):
                raise ExportError(
                    f"{path}: its contract's {key!r} differs from {first_path}'s; an ensemble needs the same"
                )
    predictors = [predict for _, predict, _ in members]

    def predict(x: np.ndarray) -> np.ndarray:
        return log_mean_softmax([p(x) for p in predictors])

    return predict, first


def log_mean_softmax(logits: list[np.ndarray]) -> np.ndarray:
    """The log of the mean class probabilities of several ``(N, C, H, W)`` logits: its
    argmax is the averaged class (an ensemble's, or a frame's and its mirror's)."""
    probs = sum(torch.from_numpy(each).float().softmax(1) for each in logits) / len(logits)
    return probs.clamp_min(1e-12).log().numpy()


def flip_predictor(predict: Predictor) -> Predictor:
    """Horizontal-flip test-time augmentation: the mean class probabilities of the frame
    and its mirror image (the mirror's prediction mirrored back); the log of that mean,
    so its argmax is the averaged class. The frame is seen twice, at twice the model time."""

    def flipped(x: np.ndarray) -> np.ndarray:
        mirror = predict(np.ascontiguousarray(x[..., ::-1]))[..., ::-1]
        return log_mean_softmax([predict(x), np.ascontiguousarray(mirror)])

    return flipped


def preprocess(rgb: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB -> ``float32 (1, 3, h, w)`` as described by ``meta['input']``."""
    spec = meta["input"]
    resized = Image.fromarray(rgb).resize((spec["width"], spec["height"]), Image.Resampling.BILINEAR)
    x = np.asarray(resized, dtype=np.float32) / float(spec["scale"])
    x = (x - np.asarray(spec["mean"], dtype=np.float32)) / np.asarray(spec["std"], dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def labelled_frames(
    pairs: list[tuple[Path, Path]], meta: dict[str, Any], desc: str = "evaluate", progress: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each frame of ``pairs`` as the model input (preprocessed as ``meta`` says) and its
    truth, with the contract's ``ignore_classes`` mapped to the ignore index."""
    spec = DatasetSpec.from_dict(meta)
    unlabel = np.arange(256, dtype=np.uint8)
    unlabel[spec.ignored_indices] = spec.ignore_index
    for image_path, mask_path in tqdm(pairs, desc=desc, disable=not progress, dynamic_ncols=True):
        image, mask = load_image(image_path), load_mask(mask_path, spec)
        if image.shape[:2] != mask.shape:
            raise DataError(f"{mask_path}: mask size {mask.shape[::-1]} differs from image {image.shape[1::-1]}")
        yield preprocess(image, meta), unlabel[mask]


def predict_labels(predict: Predictor, x: np.ndarray, size: tuple[int, ...], num_classes: int) -> torch.Tensor:
    """The class of every pixel: logits resized (bilinear) to ``size``, then argmax."""
    logits = torch.from_numpy(predict(x))
    if logits.shape[1] != num_classes:
        raise ExportError(f"model gives {logits.shape[1]} classes, metadata lists {num_classes}")
    logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits.argmax(1)[0]


def evaluate(
    predict: Predictor, meta: dict[str, Any], pairs: list[tuple[Path, Path]], progress: bool = True
) -> ConfusionMatrix:
    """Confusion matrix of ``predict`` over ``pairs`` at each mask's native resolution;
    truth pixels of the model's ``ignore_classes`` are left out."""
    spec = DatasetSpec.from_dict(meta)
    matrix = ConfusionMatrix(spec.num_classes, spec.ignore_index)
    for x, truth in labelled_frames(pairs, meta, progress=progress):
        matrix.update(predict_labels(predict, x, truth.shape, spec.num_classes), truth)
    return matrix


def format_table(summary: dict[str, Any]) -> str:
    """Human-readable per-class IoU / Dice table."""
    lines = [f"{'class':<20} {'IoU':>8} {'Dice':>8} {'pixels':>12}"]
    for name, iou in summary["iou"].items():
        dice = summary["dice"][name]
        cells = [f"{v:8.4f}" if v is not None else f"{'-':>8}" for v in (iou, dice)]
        lines.append(f"{name:<20} {cells[0]} {cells[1]} {summary['pixels'][name]:>12,}")
    miou = summary["miou"]
    lines.append(f"mIoU (classes present in the truth): {miou:.4f}" if miou is not None else "mIoU: no labelled pixels")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        required=True,
        help="model.onnx or best.pt; given more than once, the models' mean class probabilities (an ensemble)",
    )
    parser.add_argument("--data-root", type=Path, help="dataset folder (default for a checkpoint: its training data)")
    parser.add_argument(
        "--list",
        dest="list_name",
        help="list file inside the dataset folder (default: val.txt / the training validation list)",
    )
    parser.add_argument(
        "--flip", action="store_true", help="average each frame's prediction with its mirror image's (test-time flip)"
    )
    parser.add_argument("--limit", type=int, default=0, help="evaluate at most this many frames, evenly spaced")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        members, root, list_name = [], args.data_root, args.list_name
        for path in args.model:
            if path.suffix == ".onnx":
                if args.data_root is None:
                    parser.error("--data-root is required for an ONNX model")
                predict, meta = onnx_predictor(path, args.threads)
            else:
                predict, meta, ckpt = checkpoint_predictor(path)
                root = root or Path(ckpt["config"]["data"]["root"])
                list_name = list_name or ckpt["config"]["data"]["val_list"]
            members.append((path, predict, meta))
        list_name = list_name or "val.txt"
        predict, meta = members[0][1:] if len(members) == 1 else ensemble_predictor(members)
        if args.flip:
            predict = flip_predictor(predict)
        pairs = evenly_spaced(read_list(root, list_name), args.limit)
        summary = evaluate(predict, meta, pairs, progress=not args.no_progress).summary(
            [c["name"] for c in meta["classes"]]
        )
    except (DataError, ExportError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    models = " + ".join(str(m) for m in args.model)
    print(f"{models} on {len(pairs)} frames of {root / list_name} (native mask resolution)")
    print(format_table(summary))
    if args.out is not None:
        result = {
            "model": models,
            "models": [str(m) for m in args.model],
            "flip": args.flip,
            "data_root": str(root),
            "list": list_name,
            "frames": len(pairs),
            **summary,
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
