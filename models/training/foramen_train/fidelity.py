"""How faithfully one model reproduces another: an INT8 variant against its FP32 export,
a packed checkpoint against the run's, an adapted model against the bundled one.

Both models see every frame exactly as ``foramen_train.evaluate`` feeds it (stretch resize,
the contract's normalisation, logits resized back to the mask's resolution). Reported:
the share of *all* pixels where the two pick the same class (what the surgeon would see
change), that share per class the reference picks, and each model's IoU against the
truth with the contract's ignored classes left out. A val mIoU difference alone hides
how much moved: two models can score alike and disagree on many pixels.

CLI::

    python -m foramen_train.fidelity --reference ../vocalfolds.onnx --model ../vocalfolds.int8.onnx \\
        --data-root ../../../shared/data/vocalfolds [--list val.txt] [--min-agreement 0.99] [--out f.json]

Exits 1 when the agreement is under ``--min-agreement`` (a gate for a quantization step).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .dataset_spec import DataError, DatasetSpec
from .evaluate import Predictor, checkpoint_predictor, labelled_frames, onnx_predictor, predict_labels
from .export import ExportError
from .frames import evenly_spaced, read_list
from .metrics import ConfusionMatrix


def load_predictor(path: Path, threads: int) -> tuple[Predictor, dict[str, Any]]:
    """An ONNX file or a training checkpoint as a predictor and its contract."""
    if path.suffix == ".onnx":
        return onnx_predictor(path, threads)
    predict, meta, _ = checkpoint_predictor(path)
    return predict, meta


def check_same_contract(reference: tuple[Path, dict[str, Any]], model: tuple[Path, dict[str, Any]]) -> None:
    """Both models must take the same input and give the same classes: every frame is
    preprocessed once and class indices are compared directly."""
    for key in ("classes", "ignore_classes", "input"):
        if model[1].get(key) != reference[1].get(key):
            raise ExportError(f"{model[0]}: its contract's {key!r} differs from {reference[0]}'s")


def compare(
    model: Predictor, reference: Predictor, meta: dict[str, Any], pairs: list[tuple[Path, Path]], progress: bool = True
) -> tuple[ConfusionMatrix, ConfusionMatrix, ConfusionMatrix]:
    """Confusion matrices of ``model`` and ``reference`` against the truth (ignored classes
    left out) and of ``model`` against ``reference`` (rows: the reference's class; every
    pixel counts)."""
    spec = DatasetSpec.from_dict(meta)
    n = spec.num_classes
    ours, theirs = ConfusionMatrix(n, spec.ignore_index), ConfusionMatrix(n, spec.ignore_index)
    agreement = ConfusionMatrix(n, spec.ignore_index)
    for x, truth in labelled_frames(pairs, meta, desc="fidelity", progress=progress):
        mine, ref = (predict_labels(p, x, truth.shape, n) for p in (model, reference))
        ours.update(mine, truth)
        theirs.update(ref, truth)
        agreement.update(mine, ref)
    return ours, theirs, agreement


def summarize(
    ours: ConfusionMatrix, theirs: ConfusionMatrix, agreement: ConfusionMatrix, names: list[str]
) -> dict[str, Any]:
    """JSON-ready figures; per-class agreement is ``None`` where the reference never picks the class."""
    m = agreement.matrix
    picked = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(m) / picked
    mine, ref = ours.summary(names), theirs.summary(names)
    return {
        "agreement": float(np.trace(m) / max(m.sum(), 1)),
        "agreement_by_reference_class": {
            name: (None if picked[i] == 0 else float(per_class[i])) for i, name in enumerate(names)
        },
        "miou": mine["miou"],
        "reference_miou": ref["miou"],
        "iou": mine["iou"],
        "reference_iou": ref["iou"],
        "model_vs_reference": m.tolist(),
    }


def format_report(s: dict[str, Any]) -> str:
    """The console table."""
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    lines = [
        f"pixels where the two agree: {100 * s['agreement']:.2f} % (every pixel of every frame)",
        f"{'class':<18} {'ref IoU':>8} {'IoU':>8} {'delta':>8} {'agree':>8}",
    ]
    for name, a in s["agreement_by_reference_class"].items():
        ref, mine = s["reference_iou"][name], s["iou"][name]
        delta = None if ref is None or mine is None else mine - ref
        share = None if a is None else 100 * a
        cells = f"{fmt(ref, '.4f'):>8} {fmt(mine, '.4f'):>8} {fmt(delta, '+.4f'):>8} {fmt(share, '.2f'):>8}"
        lines.append(f"{name:<18} {cells}")
    delta = None if s["miou"] is None or s["reference_miou"] is None else s["miou"] - s["reference_miou"]
    lines.append(
        f"{'mIoU':<18} {fmt(s['reference_miou'], '.4f'):>8} {fmt(s['miou'], '.4f'):>8} {fmt(delta, '+.4f'):>8}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.fidelity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="the model to reproduce (.onnx or .pt)")
    parser.add_argument("--model", type=Path, required=True, help="the model to check (.onnx or .pt)")
    parser.add_argument("--data-root", type=Path, required=True, help="dataset folder")
    parser.add_argument("--list", dest="list_name", default="val.txt", help="list file inside the dataset folder")
    parser.add_argument("--limit", type=int, default=0, help="at most this many frames, evenly spaced")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--min-agreement", type=float, help="exit 1 when the pixel agreement is below this share")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.min_agreement is not None and not 0.0 <= args.min_agreement <= 1.0:
        parser.error(f"--min-agreement {args.min_agreement}: a share between 0 and 1")
    torch.set_num_threads(args.threads)
    try:
        reference, ref_meta = load_predictor(args.reference, args.threads)
        model, meta = load_predictor(args.model, args.threads)
        check_same_contract((args.reference, ref_meta), (args.model, meta))
        pairs = evenly_spaced(read_list(args.data_root, args.list_name), args.limit)
        matrices = compare(model, reference, meta, pairs, progress=not args.no_progress)
    except (DataError, ExportError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    summary = summarize(*matrices, [c["name"] for c in meta["classes"]])
    print(f"{args.model} against {args.reference} on {len(pairs)} frames of {args.data_root / args.list_name}")
    print(format_report(summary))
    if args.out is not None:
        result = {
            "model": str(args.model),
            "reference": str(args.reference),
            "data_root": str(args.data_root),
            "list": args.list_name,
            "frames": len(pairs),
            **summary,
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    if args.min_agreement is not None and summary["agreement"] < args.min_agreement:
        print(
            f"error: agreement {summary['agreement']:.4f} is under --min-agreement {args.min_agreement}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
