"""The GAN's command line.

::

    python -m foramen_train.gan train --config configs/gan-vocalfolds.toml [--out DIR]
    python -m foramen_train.gan grid --generator DIR/generator.pt [--list val.txt] [--out grid.png]
    python -m foramen_train.gan quality --generator DIR/generator.pt --features RUN/best.pt
        [--seg-model ../vocalfolds.onnx] [--out quality.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..dataset_spec import DataError
from ..frames import load_mask, read_list
from .config import load_gan_config
from .errors import GanError
from .grid import save_grid
from .image_quality import quality
from .sampling import Generator
from .training import load_pairs, train_gan

DESCRIPTION = "Label-map-to-image GAN (pix2pix) for training-set augmentation, as the study did."
RUNS_DIR = Path(__file__).resolve().parents[2] / "runs"
"""Default parent of GAN run folders (``models/training/runs``)."""


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.gan", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train the label-to-image GAN")
    p_train.add_argument("--config", type=Path, required=True)
    p_train.add_argument("--out", type=Path, help="output folder (default: models/training/runs/gan-<config>)")
    p_train.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p_grid = sub.add_parser("grid", help="PNG grid of (label, generated, real) rows")
    p_grid.add_argument("--generator", type=Path, required=True)
    p_grid.add_argument("--data-root", type=Path, help="default: the generator's training data")
    p_grid.add_argument("--list", default="val.txt")
    p_grid.add_argument("--rows", type=int, default=6)
    p_grid.add_argument("--synthetic-rows", type=int, default=3)
    p_grid.add_argument("--out", type=Path, required=True)
    p_q = sub.add_parser("quality", help="KID and segmentation mIoU of generated validation images")
    p_q.add_argument("--generator", type=Path, required=True)
    p_q.add_argument("--features", type=Path, required=True, help="segmentation checkpoint (best.pt) for KID features")
    p_q.add_argument("--seg-model", type=Path, help="ONNX segmentation model for the mIoU check")
    p_q.add_argument("--data-root", type=Path, help="default: the generator's training data")
    p_q.add_argument("--list", default="val.txt")
    p_q.add_argument("--train-list", default="train.txt")
    p_q.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            cfg = load_gan_config(args.config, args.sets)
            out = args.out or RUNS_DIR / f"gan-{args.config.stem}"
            train_gan(cfg, out)
            return 0
        generator = Generator(args.generator)
        root = args.data_root or Path(generator.training["config"]["data"]["root"])
        if args.command == "grid":
            spec = generator.dataset
            pairs = load_pairs(root, args.list, 0, spec)
            train_masks = [
                load_mask(m, spec) for _, m in read_list(root, generator.training["config"]["data"]["train_list"])
            ]
            save_grid(
                generator,
                [m for _, m in pairs],
                [i for i, _ in pairs],
                train_masks,
                args.out,
                args.rows,
                args.synthetic_rows,
            )
            print(f"wrote {args.out}")
            return 0
        result = quality(generator, args.features, root, args.list, args.train_list, args.seg_model)
        text = json.dumps(result, indent=2)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n", encoding="utf-8")
        print(text)
        return 0
    except (GanError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
