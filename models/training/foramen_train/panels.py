"""A figure of labelled frames: each row a frame, its truth and one or more models' masks.

For model cards and for the questions a number cannot answer ("what does the truth call
these pixels, and what does the model?"): the frame, then the frame with its truth
blended in the classes' colours, then the same for each ONNX model (class of every pixel
at the mask's resolution, as ``evaluate`` scores it). Pixels of the contract's ignored
classes (``void``) stay unblended in the truth, as scoring leaves them out.

CLI (from ``models/training``)::

    python -m foramen_train.panels --data ../../../shared/data/vocalfolds --list val.txt \\
        --list train.txt --frame img/patient1/seq3/0216.png --frame img/patient2/seq8/0864.png \\
        --model ../vocalfolds.onnx --out figures/tube-view.jpg [--width 256] [--alpha 0.5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .dataset_spec import DataError, DatasetSpec
from .evaluate import labelled_frames, onnx_predictor, predict_labels
from .export import ExportError
from .frames import load_image, read_list

LABEL_PX = 18  # height of the caption strip above each row


def find_frames(root: Path, lists: list[str], frames: list[str]) -> list[tuple[Path, Path]]:
    """The (image, mask) pairs of ``frames`` (image paths relative to ``root``, as in the
    list files), in the order given; a frame in none of ``lists`` is an error naming them."""
    pairs = {str(image.relative_to(root)): (image, mask) for name in lists for image, mask in read_list(root, name)}
    missing = [f for f in frames if f not in pairs]
    if missing:
        raise DataError(f"{', '.join(str(root / n) for n in lists)}: no line for {missing}")
    return [pairs[f] for f in frames]


def overlay(rgb: np.ndarray, classes: np.ndarray, spec: DatasetSpec, alpha: float) -> np.ndarray:
    """``rgb`` with every pixel of a scored class blended with that class's colour."""
    colours = np.zeros((256, 3), dtype=np.float32)
    blend = np.zeros(256, dtype=np.float32)
    for c in spec.classes:
        if c.name not in spec.ignore_classes:
            colours[c.index], blend[c.index] = c.color, alpha
    a = blend[classes][..., None]
    return (rgb.astype(np.float32) * (1 - a) + colours[classes] * a).round().astype(np.uint8)


def render(pairs: list[tuple[Path, Path]], models: list[Path], root: Path, width: int, alpha: float) -> Image.Image:
    """The figure: a caption strip and a row of panels per frame (frame, truth, models)."""
    loaded = [onnx_predictor(m, threads=2) for m in models]
    meta: dict[str, Any] = loaded[0][1]
    for path, (_, other) in zip(models[1:], loaded[1:]):
        if other["classes"] != meta["classes"]:
            raise ExportError(f"{path}: its classes differ from {models[0]}'s")
    spec = DatasetSpec.from_dict(meta)
    titles = ["frame", "truth"] + [m.name for m in models]
    rows = []
    for (image_path, _), (x, truth) in zip(pairs, labelled_frames(pairs, meta, progress=False)):
        rgb = load_image(image_path)
        panels = [rgb, overlay(rgb, truth, spec, alpha)]
        for predict, _ in loaded:
            classes = predict_labels(predict, x, truth.shape, spec.num_classes).numpy().astype(np.uint8)
            panels.append(overlay(rgb, classes, spec, alpha))
        height = round(width * rgb.shape[0] / rgb.shape[1])
        row = Image.new("RGB", (width * len(panels), height + LABEL_PX), "white")
        draw = ImageDraw.Draw(row)
        for k, (panel, title) in enumerate(zip(panels, titles)):
            row.paste(Image.fromarray(panel).resize((width, height), Image.Resampling.LANCZOS), (k * width, LABEL_PX))
            caption = str(image_path.relative_to(root)) if k == 0 else title
            draw.text((k * width + 4, 3), caption, fill="black")
        rows.append(row)
    rows.append(legend(spec, rows[0].width))
    figure = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        figure.paste(row, (0, y))
        y += row.height
    return figure


def legend(spec: DatasetSpec, width: int) -> Image.Image:
    """A strip naming each scored class beside a swatch of its colour."""
    strip = Image.new("RGB", (width, LABEL_PX + 4), "white")
    draw = ImageDraw.Draw(strip)
    x = 4
    for c in spec.classes:
        if c.name in spec.ignore_classes:
            continue
        draw.rectangle((x, 5, x + 12, 17), fill=tuple(c.color))
        draw.text((x + 16, 5), c.name, fill="black")
        x += 16 + round(draw.textlength(c.name)) + 12
    return strip


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.panels", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset folder")
    parser.add_argument("--list", dest="lists", action="append", required=True, help="list file (repeatable)")
    parser.add_argument("--frame", dest="frames", action="append", required=True, help="image path as listed")
    parser.add_argument("--model", dest="models", type=Path, action="append", required=True, help="ONNX model")
    parser.add_argument("--out", type=Path, required=True, help="figure file (.jpg or .png)")
    parser.add_argument("--width", type=int, default=256, help="width of each panel in pixels")
    parser.add_argument("--alpha", type=float, default=0.5, help="opacity of the class colours")
    args = parser.parse_args(argv)
    if args.out.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        print(f"error: {args.out}: the figure must be a .jpg or .png file", file=sys.stderr)
        return 1
    if args.width < 16 or not 0.0 < args.alpha <= 1.0:
        print("error: --width must be at least 16 and --alpha in (0, 1]", file=sys.stderr)
        return 1
    try:
        figure = render(find_frames(args.data, args.lists, args.frames), args.models, args.data, args.width, args.alpha)
    except (DataError, ExportError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.out, quality=88)
    print(f"{args.out}: {len(args.frames)} frames x {2 + len(args.models)} panels, {figure.width}x{figure.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
