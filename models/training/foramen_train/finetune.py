"""Adapt a trained model to a new patient or tower from a few labelled frames.

Laves et al. (IJCARS 2019) found about ten labelled frames of a new patient enough to
recover most of the accuracy lost on an unseen one. A hospital labels a handful of frames
of its own video (``foramen extract`` then Label Studio, or any tool writing the data set
format) and runs a short fine-tune, minutes on a CPU, from the bundled model's checkpoint;
the result is exported with the same ONNX contract and replaces the model in the config.

CLI::

    python -m foramen_train.finetune --from CKPT --data D --list FEW.txt --out RUN
        [--val VAL.txt] [--steps 60] [--lr 5e-4] [--rehearse [LIST]] [--rehearse-share 0.5]
        [--seed 0] [--threads 2] [--set k=v ...]

The checkpoint's own configuration is the recipe (model, loss, augmentation, export
settings); the fine-tune changes only what a short run on few frames needs: the listed
frames, a lower learning rate without warmup, a fixed step budget, and the encoder's stem
and BatchNorm statistics held fixed (a handful of frames cannot estimate better ones).
``summary.json`` records the validation loss and mIoU before the first step (the
checkpoint's own, ``initial_val_loss`` and ``initial_val_miou``) and after the last, and
``val_miou_change``: the exported epoch's val mIoU minus the checkpoint's. With ``--val``
frames the fine-tune did not train on, a negative change is printed as a warning
(``worse_than_checkpoint``): a fine-tune on a few frames can lose as well as gain, and such
a model should not replace the one it started from. Without ``--val`` the figures are on
the frames it trained on and say nothing about new ones; the CLI says so.

``--rehearse`` mixes frames the model was trained on into every epoch (the checkpoint's
own training list, or ``LIST``): a few frames of one patient often show only part of what
the model must keep recognising (the first ten of a sequence may be mostly tool), and
without them the fine-tune forgets the rest. ``--rehearse-share`` is the new frames'
share of the mix; the list used is written to the run folder (``train-mixed.txt``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, apply_override, config_from_dict
from .dataset_spec import DataError, load_dataset_spec
from .export import ExportError
from .frames import read_list
from .train import prepare_run_dir, train

DEFAULT_STEPS = 60
"""Optimisation steps of a fine-tune: about two minutes at 320x320 on 2 CPU cores."""
DEFAULT_LR = 5e-4
"""Peak learning rate of a fine-tune (a quarter of the vocalfolds recipe's)."""
DEFAULT_REHEARSE_SHARE = 0.5
"""Share of the new frames in a rehearsed fine-tune's epochs (the rest: training frames)."""
MIX_NEW_ENTRIES = 40
"""The new frames are repeated to at least this many entries of the mixed list, so that
an epoch of the mix is long enough for its per-epoch validation not to dominate."""
REHEARSE_CHECKPOINT = "checkpoint"
"""``--rehearse`` without a list: the checkpoint's own training list."""


def rehearsal_list(ckpt: dict[str, Any], rehearse: str) -> tuple[Path, str]:
    """The data set folder and list name of ``--rehearse``: the checkpoint's own training
    list, or a list file (its entries relative to its own folder, the data set's)."""
    if rehearse == REHEARSE_CHECKPOINT:
        data = ckpt["config"]["data"]
        root, name = Path(data["root"]), data["train_list"]
        if not (root / name).is_file():
            raise DataError(
                f"{root / name}: the checkpoint's training list is not on this machine "
                "(--rehearse); pass a list of frames with the same classes: --rehearse LIST"
            )
        return root, name
    path = Path(rehearse).resolve()
    return path.parent, path.name


def mixed_entries(
    ckpt: dict[str, Any], data: Path, train_list: str, rehearsed: tuple[Path, str], share: float, seed: int
) -> list[tuple[Path, Path]]:
    """The new frames, repeated, then frames of the ``rehearsed`` (folder, list), ``share``
    of them new; the rehearsed data set must have the model's classes."""
    if not 0 < share <= 1:
        raise ConfigError(f"--rehearse-share: must be in (0, 1], got {share}")
    new = read_list(data, train_list)
    root, name = rehearsed
    classes = [c["name"] for c in ckpt["dataset"]["classes"]]
    load_dataset_spec(root, classes, ckpt["dataset"].get("ignore_index", 255))
    old = read_list(root, name)
    new = new * math.ceil(MIX_NEW_ENTRIES / len(new))
    count = round(len(new) * (1 - share) / share)
    rng = random.Random(seed)
    return new + (rng.sample(old, count) if count <= len(old) else rng.choices(old, k=count))


def _without_none(table: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of plain config data without ``None`` values (unset optional keys)."""
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in table.items() if v is not None}


def finetune_config(
    ckpt: dict[str, Any],
    data: Path,
    train_list: str,
    val_list: str,
    frames: int,
    steps: int,
    lr: float,
    seed: int,
    threads: int,
    overrides: list[str],
) -> dict[str, Any]:
    """The checkpoint's configuration turned into a fine-tune's (plain TOML-like data)."""
    doc = _without_none(ckpt["config"])
    batch = max(2, min(int(doc["train"]["batch_size"]), frames))
    steps_per_epoch = max(1, frames // batch)
    doc["data"].update(
        root=str(data.resolve()),
        train_list=train_list,
        val_list=val_list,
        train_limit=0,
        val_limit=0,
        num_workers=0,
        augment_on="loader",
    )
    doc["data"]["gan"] = {}
    doc["train"].update(
        epochs=max(1, math.ceil(steps / steps_per_epoch)),
        batch_size=batch,
        lr=lr,
        warmup_epochs=0.0,
        seed=seed,
        threads=threads,
        max_minutes=0.0,
        fit_epochs_to_time=False,
        freeze_encoder_epochs=0,
        freeze_stem=True,
        freeze_bn=True,
        ema_decay=0.0,
        init_from="",
    )
    for item in overrides:
        apply_override(doc, item)
    return doc


def finetune(
    checkpoint: Path,
    data: Path,
    train_list: str,
    out: Path,
    *,
    val_list: str | None = None,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    threads: int = 2,
    overrides: list[str] | None = None,
    progress: bool = False,
    export: bool = True,
    rehearse: str | None = None,
    rehearse_share: float = DEFAULT_REHEARSE_SHARE,
) -> dict[str, Any]:
    """Fine-tune ``checkpoint`` on ``data/train_list``; return the run's summary.

    ``train_list`` and ``val_list`` are relative to ``data`` or absolute; their entries
    are relative to ``data``. ``rehearse``: :data:`REHEARSE_CHECKPOINT` or a list file of
    training frames to mix in (see :func:`mixed_entries`)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ConfigError(f"{checkpoint}: checkpoint not found (--from)")
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "config" not in ckpt:
        raise ConfigError(f"{checkpoint}: not a foramen_train checkpoint (no 'config')")
    frames = len(read_list(data, train_list))
    if frames < 2:
        raise DataError(f"{data / train_list}: {frames} frame(s); a fine-tune needs at least 2")
    if steps < 1:
        raise ConfigError(f"--steps: must be >= 1, got {steps}")
    rehearsed = rehearsal_list(ckpt, rehearse) if rehearse else None
    mix = mixed_entries(ckpt, data, train_list, rehearsed, rehearse_share, seed) if rehearsed else None
    mix_path = Path(out).resolve() / "train-mixed.txt"
    doc = finetune_config(
        ckpt,
        data,
        str(mix_path) if mix else train_list,
        val_list or train_list,
        len(mix) if mix else frames,
        steps,
        lr,
        seed,
        threads,
        overrides or [],
    )
    cfg = config_from_dict(doc, f"fine-tune of {checkpoint}")
    cfg.train.init_from = str(checkpoint.resolve())
    run_dir = prepare_run_dir(cfg, Path(out))
    if mix:
        mix_path.write_text("".join(f"{i.resolve()} {m.resolve()}\n" for i, m in mix), encoding="utf-8")
    summary = train(cfg, run_dir, progress=progress, overrides=[f"fine-tune of {checkpoint}"], export=export)
    if summary:
        summary |= against_checkpoint(summary, held_out=val_is_held_out(data, train_list, val_list, mix))
        if mix:
            # Which frames were rehearsed, beside the run's own figures.
            list_path = str(rehearsed[0].resolve() / rehearsed[1])
            summary["rehearse"] = {"list": list_path, "share": rehearse_share, "new_frames": frames}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def val_is_held_out(data: Path, train_list: str, val_list: str | None, mix: list[tuple[Path, Path]] | None) -> bool:
    """Whether the validation frames are all frames the fine-tune did not train on."""
    if val_list is None:
        return False
    trained = {image.resolve() for image, _ in (mix or read_list(data, train_list))}
    return not any(image.resolve() in trained for image, _ in read_list(data, val_list))


def against_checkpoint(summary: dict[str, Any], held_out: bool) -> dict[str, Any]:
    """The exported epoch's val mIoU against the checkpoint's before the first step:
    ``val_miou_change``, and ``worse_than_checkpoint`` (``None`` when the validation
    frames are the training frames, ``held_out`` false, which cannot tell)."""
    change = summary["val_miou"] - summary["initial_val_miou"]
    return {
        "val_held_out": held_out,
        "val_miou_change": change,
        "worse_than_checkpoint": (change < 0) if held_out else None,
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.finetune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="checkpoint", type=Path, required=True, help="best.pt to start from")
    parser.add_argument("--data", type=Path, required=True, help="data set folder of the new patient or tower")
    parser.add_argument("--list", dest="train_list", required=True, help="list of the labelled frames (in --data)")
    parser.add_argument("--val", dest="val_list", help="list to validate on (default: the --list frames)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (must be new or empty)")
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"optimisation steps, rounded up to whole epochs (default {DEFAULT_STEPS})",
    )
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"peak learning rate (default {DEFAULT_LR})")
    parser.add_argument(
        "--rehearse",
        nargs="?",
        const=REHEARSE_CHECKPOINT,
        metavar="LIST",
        help="mix training frames into every epoch: the checkpoint's own training list, or LIST "
        "(a list file in its data set's folder)",
    )
    parser.add_argument(
        "--rehearse-share",
        type=float,
        default=DEFAULT_REHEARSE_SHARE,
        help=f"share of the new frames in a rehearsed epoch (default {DEFAULT_REHEARSE_SHARE})",
    )
    parser.add_argument("--seed", type=int, default=0, help="augmentation, shuffle and rehearsal seed")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a key of the checkpoint's config, e.g. --set train.batch_size=4",
    )
    parser.add_argument("--progress", action="store_true", help="tqdm progress bars")
    args = parser.parse_args(argv)
    try:
        summary = finetune(
            args.checkpoint,
            args.data,
            args.train_list,
            args.out,
            val_list=args.val_list,
            steps=args.steps,
            lr=args.lr,
            seed=args.seed,
            threads=args.threads,
            overrides=args.sets,
            progress=args.progress,
            rehearse=args.rehearse,
            rehearse_share=args.rehearse_share,
        )
    except (ConfigError, DataError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"fine-tuned from {args.checkpoint}: val loss {summary['initial_val_loss']:.4f} -> "
        f"{summary['final_val_loss']:.4f}, val mIoU {summary['initial_val_miou']:.4f} -> "
        f"{summary['val_miou']:.4f} (exported epoch); wrote {summary['onnx']}"
    )
    if not summary["val_held_out"]:
        print(
            "note: validated on frames it trained on (no --val, or --val shares frames with --list): "
            "score it on frames it did not see "
            "(foramen eval, or --val) before it replaces the model it started from",
            file=sys.stderr,
        )
    elif summary["worse_than_checkpoint"]:
        print(
            f"warning: on {args.val_list} the fine-tune scores {-summary['val_miou_change']:.4f} mIoU below "
            f"{args.checkpoint}: keep the model it started from",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
