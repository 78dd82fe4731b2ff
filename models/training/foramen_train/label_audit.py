"""Where the pixels of one class lie: a check of what a label means before training on it.

CLI::

    python -m foramen_train.label_audit --data ../shared/data/vocalfolds --list train.txt --list val.txt \\
        --class-index 0 [--dark 40] [--band 12] [--by-sequence] [--json out.json]

For each list it reports, for the class: its share of the pixels and the frames holding
it, the share of its pixels that are dark in the image (the brightest channel under
``--dark``: the black surround of a scope view), the share within ``--band`` pixels of
another label (thin gaps between annotated regions), and the IoU that the rule "dark
pixel -> this class" reaches against the masks. On vocalfolds this showed that ``void``
is mostly unannotated tissue in the training sequences and mostly thin gaps in the
validation ones, not the view's dark surround (see ``models/vocalfolds.md``).

``--by-sequence`` reports each list per image folder (a sequence, in the PaddleSeg layout
of one folder per sequence): a label drawn one way in one sequence and another way in
the rest shows up as a sequence whose dark share stands apart. On vocalfolds class 6
(intubation) it showed that patient1/seq3 labels only the tube's white coil, where
every other sequence labels its dark body too (``models/training/README.md``, "Where the
gap is").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scipy import ndimage

from .dataset_spec import DataError
from .frames import load_image, read_list, read_mask_values


def audit(root: Path, list_name: str, class_index: int, dark: int = 40, band: int = 12) -> dict:
    """Statistics of ``class_index`` over the frames of ``root/list_name``."""
    return audit_pairs(read_list(root, list_name), list_name, class_index, dark, band)


def audit_by_sequence(root: Path, list_name: str, class_index: int, dark: int = 40, band: int = 12) -> list[dict]:
    """:func:`audit` for each image folder of ``root/list_name``, in list order; each
    result's ``list`` is ``LIST:FOLDER`` (the folder relative to ``root``)."""
    groups: dict[str, list[tuple[Path, Path]]] = {}
    for image_path, mask_path in read_list(root, list_name):
        parent = image_path.parent.resolve()
        folder = parent.relative_to(root.resolve()).as_posix() if parent.is_relative_to(root.resolve()) else str(parent)
        groups.setdefault(folder, []).append((image_path, mask_path))
    return [audit_pairs(pairs, f"{list_name}:{folder}", class_index, dark, band) for folder, pairs in groups.items()]


def audit_pairs(pairs: list[tuple[Path, Path]], label: str, class_index: int, dark: int, band: int) -> dict:
    """Statistics of ``class_index`` over ``pairs`` (image, mask), reported as ``label``."""
    pixels = frames = holding = in_class = dark_in = band_in = 0
    rule_inter = rule_union = 0
    for image_path, mask_path in pairs:
        mask = read_mask_values(mask_path)
        image = load_image(image_path)
        if image.shape[:2] != mask.shape:
            raise DataError(f"{mask_path}: mask size differs from its image {image_path}")
        frames += 1
        pixels += mask.size
        cls = mask == class_index
        is_dark = image.max(axis=2) < dark
        rule_inter += int((cls & is_dark).sum())
        rule_union += int((cls | is_dark).sum())
        if not cls.any():
            continue
        holding += 1
        in_class += int(cls.sum())
        dark_in += int((cls & is_dark).sum())
        # Distance of each class pixel to the nearest pixel of another label.
        band_in += int((cls & (ndimage.distance_transform_edt(cls) <= band)).sum())

    def share(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return {
        "list": label,
        "class_index": class_index,
        "frames": frames,
        "frames_with_class": holding,
        "pixel_share": share(in_class, pixels),
        "dark_share": share(dark_in, in_class),
        "band_share": share(band_in, in_class),
        "dark_rule_iou": share(rule_inter, rule_union),
        "dark_threshold": dark,
        "band_px": band,
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.label_audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset folder")
    parser.add_argument("--list", dest="lists", action="append", required=True, help="list file (repeatable)")
    parser.add_argument("--class-index", type=int, required=True, help="class to audit")
    parser.add_argument("--dark", type=int, default=40, help="a pixel is dark when its brightest channel is below this")
    parser.add_argument("--band", type=int, default=12, help="band width in pixels next to other labels")
    parser.add_argument("--by-sequence", action="store_true", help="one report per image folder of each list")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        results = []
        for name in args.lists:
            if args.by_sequence:
                results += audit_by_sequence(args.data, name, args.class_index, args.dark, args.band)
            else:
                results.append(audit(args.data, name, args.class_index, args.dark, args.band))
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for r in results:
        print(
            f"{r['list']}: class {r['class_index']} in {r['frames_with_class']} of {r['frames']} frames, "
            f"{100 * r['pixel_share']:.1f} % of pixels; dark (< {r['dark_threshold']}) {100 * r['dark_share']:.0f} %, "
            f"within {r['band_px']} px of another label {100 * r['band_share']:.0f} %; "
            f"IoU of 'dark -> class' {r['dark_rule_iou']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
