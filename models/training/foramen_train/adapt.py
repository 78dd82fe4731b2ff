"""Measure adaptation to an unseen patient: fine-tune on the first N frames of each
validation sequence (by frame order), score on the rest of that sequence.

CLI::

    python -m foramen_train.adapt --from CKPT [--data D] [--list val.txt] [--frames 5 10 20]
        [--seeds 0 1 2] [--steps 60] [--steps-per-frame K] [--rehearse [LIST]] [--rehearse-share 0.5]
        [--reference] [--pick first|spread|uncertain --pool SHARE [--guard G]] --out RUN

For each sequence (the folder of a list entry's image) and each N, ``--seeds`` fine-tunes
(:mod:`foramen_train.finetune`, last epoch's weights) are scored on that sequence's frames
after the first N, at the masks' native resolution with the checkpoint's ignored classes
left out, next to the checkpoint itself (N = 0) on the same frames. With ``--reference``
each (sequence, N) also gets the ceiling of this fine-tune: the same recipe and step count
(first seed) trained on the scored frames themselves, so "how much of the gap N frames
recover" is ``(fine-tuned - checkpoint) / (reference - checkpoint)``. With
``--steps-per-frame K`` a fine-tune on N frames takes ``max(steps, K * N)`` steps, so each
new frame is seen as often at every N (a rehearsed fine-tune wants about 4). Results go to
``adapt.json`` and ``adapt.md``; a finished run is reused when the command is run again
with the same recipe, and run again when the recipe changed.

Which N frames: by default the first N, scored on all later frames. ``--pool SHARE``
instead draws them from the first ``SHARE`` of each sequence (by frame order) and scores
every pick on the same frames, those after the pool and ``--guard G`` more, so picks can
be compared: ``--pick first``, ``spread`` (evenly over the pool) or ``uncertain`` (the
frames where the checkpoint's mean per-pixel entropy is highest). Neighbouring frames are
near duplicates, so ``spread`` and ``uncertain`` need ``--pool``: without it, scored
frames would sit between picked ones; and a guard keeps the pool's last frames from
standing in for the first scored ones.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ConfigError
from .dataset_spec import DataError
from .evaluate import checkpoint_predictor, evaluate, labelled_frames
from .export import ExportError
from .finetune import DEFAULT_REHEARSE_SHARE, DEFAULT_STEPS, REHEARSE_CHECKPOINT, finetune
from .frames import read_list

PICKS = ("first", "spread", "uncertain")
"""How the N frames to fine-tune on are chosen (see the module's docstring)."""


def sequences(root: Path, list_name: str) -> dict[str, list[tuple[Path, Path]]]:
    """The list's frames grouped by their image folder, each group in frame-name order."""
    groups: dict[str, list[tuple[Path, Path]]] = {}
    for image, mask in read_list(root, list_name):
        groups.setdefault(str(image.parent.relative_to(root)), []).append((image, mask))
    return {name: sorted(pairs, key=lambda p: p[0].name) for name, pairs in sorted(groups.items())}


def write_list(path: Path, root: Path, pairs: list[tuple[Path, Path]]) -> Path:
    """A list file of ``pairs`` (paths relative to ``root``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i.relative_to(root)} {m.relative_to(root)}\n" for i, m in pairs), encoding="utf-8")
    return path


def score(checkpoint: Path, pairs: list[tuple[Path, Path]]) -> float:
    """mIoU over the classes in the truth (ignored classes left out) of a checkpoint."""
    predict, meta, _ = checkpoint_predictor(checkpoint)
    summary = evaluate(predict, meta, pairs, progress=False).summary([c["name"] for c in meta["classes"]])
    return float(summary["miou"])


def mean_entropy(checkpoint: Path, pairs: list[tuple[Path, Path]]) -> list[float]:
    """Each frame's mean per-pixel entropy (nats) of the checkpoint's class
    probabilities at its input size: how unsure the model is of the frame."""
    predict, meta, _ = checkpoint_predictor(checkpoint)
    result = []
    for x, _ in labelled_frames(pairs, meta, progress=False):
        probs = torch.from_numpy(predict(x)).float().softmax(1)
        result.append(float(-(probs * probs.clamp_min(1e-12).log()).sum(1).mean()))
    return result


def choose(
    checkpoint: Path,
    name: str,
    pairs: list[tuple[Path, Path]],
    n: int,
    pick: str = "first",
    pool: float | None = None,
    guard: int = 0,
) -> tuple[list[int], list[tuple[Path, Path]]]:
    """The indices (in frame order) of the N frames of sequence ``name`` to fine-tune on,
    and the frames to score: after the first N, or with ``pool``, after the pool and
    the guard (the same frames for every pick)."""
    if pick not in PICKS:
        raise ConfigError(f"--pick {pick}: expected one of {', '.join(PICKS)}")
    if pool is None:
        if pick != "first" or guard:
            raise ConfigError(
                f"--pick {pick} --guard {guard} needs --pool: scored frames must all come after the picked ones"
            )
        if n + 1 >= len(pairs):
            raise DataError(f"{name} has {len(pairs)} frames, too few for N={n}")
        return list(range(n)), pairs[n:]
    if not 0.0 < pool < 1.0 or guard < 0:
        raise ConfigError(f"--pool {pool} --guard {guard}: the pool is a share in (0, 1), the guard at least 0 frames")
    size = math.floor(pool * len(pairs))
    test = pairs[size + guard :]
    if n > size or len(test) < 2:
        raise DataError(
            f"{name} has {len(pairs)} frames: a pool of {size} and a guard of {guard} leave "
            f"{len(test)} to score, too few for N={n}"
        )
    if pick == "first":
        picked = list(range(n))
    elif pick == "spread":
        picked = [int((i + 0.5) * size / n) for i in range(n)]
    else:
        entropy = np.asarray(mean_entropy(checkpoint, pairs[:size]))
        picked = sorted(np.argsort(-entropy, kind="stable")[:n].tolist())
    return picked, test


def finetune_and_score(
    checkpoint: Path,
    root: Path,
    run_dir: Path,
    train_pairs: list[tuple[Path, Path]],
    test_pairs: list[tuple[Path, Path]],
    seed: int,
    recipe: dict[str, Any],
) -> float:
    """mIoU on ``test_pairs`` of a fine-tune on ``train_pairs`` (cached in ``score.json``
    with its recipe, reused only for the same recipe); ``recipe``: the other keyword
    arguments of :func:`foramen_train.finetune.finetune`."""
    result = run_dir / "score.json"
    # The thread count changes the speed, not what is measured.
    key = {k: v for k, v in recipe.items() if k != "threads"} | {
        "seed": seed,
        "checkpoint": str(checkpoint.resolve()),
        "frames": [str(i.relative_to(root)) for i, _ in train_pairs],
        "scored": [str(i.relative_to(root)) for i, _ in test_pairs],
    }
    cached = json.loads(result.read_text()) if result.is_file() else {}
    if cached.get("recipe") != key:
        if run_dir.exists():
            for stale in run_dir.iterdir():
                stale.unlink()
        lists = run_dir.parent / "lists"
        train_list = write_list(lists / f"{run_dir.name}-train.txt", root, train_pairs)
        # The per-epoch validation only picks best.pt, which is not scored here (last.pt
        # is): two frames keep its cost out of the measurement.
        val_list = write_list(lists / f"{run_dir.name}-val.txt", root, train_pairs[:2])
        finetune(
            checkpoint,
            root,
            str(train_list),
            run_dir,
            val_list=str(val_list),
            seed=seed,
            export=False,
            **recipe,
        )
        result.write_text(json.dumps({"miou": score(run_dir / "last.pt", test_pairs), "recipe": key}) + "\n")
    return float(json.loads(result.read_text())["miou"])


@dataclass(frozen=True)
class Selection:
    """Which N frames of a sequence are fine-tuned on, and which are scored
    (:func:`choose`); the default is the first N, scored on the rest."""

    pick: str = "first"
    pool: float | None = None
    guard: int = 0


def run(
    checkpoint: Path,
    root: Path,
    list_name: str,
    frames: list[int],
    seeds: list[int],
    steps: int,
    out: Path,
    threads: int = 2,
    reference: bool = False,
    rehearse: str | None = None,
    rehearse_share: float = DEFAULT_REHEARSE_SHARE,
    steps_per_frame: int | None = None,
    selection: Selection = Selection(),
) -> dict[str, Any]:
    """Every (sequence, N, seed) fine-tune and score; returns what ``adapt.json`` holds.
    ``steps_per_frame``: N frames get ``max(steps, steps_per_frame * N)`` steps."""
    out = out.resolve()  # list files are read relative to the data set unless absolute
    if steps < 1 or (steps_per_frame is not None and steps_per_frame < 1):
        raise ConfigError(f"steps must be at least 1 (got --steps {steps}, --steps-per-frame {steps_per_frame})")
    shared = dict(threads=threads, rehearse=rehearse, rehearse_share=rehearse_share)
    # Run folders of the default selection keep their names (and their cached scores).
    label = "" if selection == Selection() else f"{selection.pick}-"
    rows = []
    for name, pairs in sequences(root, list_name).items():
        tag = name.replace("/", "-")
        for n in frames:
            picked, rest = choose(checkpoint, f"{root / list_name}: {name}", pairs, n, **asdict(selection))
            few = [pairs[i] for i in picked]
            n_steps = max(steps, steps_per_frame * n) if steps_per_frame else steps
            recipe = dict(shared, steps=n_steps)
            base = score(checkpoint, rest)
            scores = [
                finetune_and_score(checkpoint, root, out / f"{tag}-{label}n{n}-s{seed}", few, rest, seed, recipe)
                for seed in seeds
            ]
            ref = (
                finetune_and_score(checkpoint, root, out / f"{tag}-{label}n{n}-ref", rest, rest, seeds[0], recipe)
                if reference
                else None
            )
            rows.append(
                {
                    "sequence": name,
                    "n": n,
                    "picked": [pairs[i][0].name for i in picked],
                    "test_frames": len(rest),
                    "steps": n_steps,
                    "checkpoint_miou": base,
                    "finetuned_miou": scores,
                    "mean": statistics.fmean(scores),
                    "sd": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                    "reference_miou": ref,
                }
            )
            print(
                f"{name} N={n}: {base:.4f} -> {rows[-1]['mean']:.4f} ± {rows[-1]['sd']:.4f} on {len(rest)} frames",
                flush=True,
            )
    return {
        "checkpoint": str(checkpoint),
        "data": str(root),
        "list": list_name,
        "steps": steps,
        "steps_per_frame": steps_per_frame,
        "seeds": seeds,
        "rehearse": rehearse,
        "rehearse_share": rehearse_share if rehearse else None,
        "selection": asdict(selection),
        "rows": rows,
    }


def _rehearsal(result: dict[str, Any]) -> str:
    """How the table's fine-tunes rehearsed, for its caption."""
    if not result.get("rehearse"):
        return ""
    source = "the checkpoint's training list" if result["rehearse"] == REHEARSE_CHECKPOINT else result["rehearse"]
    return f" (rehearsing {source}, new frames {result['rehearse_share']:.0%} of each epoch)"


def _frames(result: dict[str, Any]) -> str:
    """Which frames the table's fine-tunes saw and which were scored, for its caption."""
    pick = result.get("selection") or asdict(Selection())
    if pick["pool"] is None:
        return f"the first N frames of each sequence of `{result['list']}`, scored on the sequence's later frames"
    how = {"first": "the first", "spread": "evenly spread", "uncertain": "the most uncertain (entropy)"}[pick["pick"]]
    return (
        f"{how} N frames of the first {pick['pool']:.0%} of each sequence of `{result['list']}`, scored on "
        f"its frames after that share and a guard of {pick['guard']}"
    )


def markdown(result: dict[str, Any]) -> str:
    """The table for the training README."""
    with_ref = any(r.get("reference_miou") is not None for r in result["rows"])
    per_frame = result.get("steps_per_frame")
    steps = f"max({result['steps']}, {per_frame} × N)" if per_frame else str(result["steps"])
    lines = [
        f"Fine-tune of `{result['checkpoint']}` for {steps} steps{_rehearsal(result)} on {_frames(result)} "
        f"(mIoU over the classes in the truth, ignored classes left out); seeds {result['seeds']}.",
        "",
        "| sequence | N | steps | test frames | N = 0 (checkpoint) | fine-tuned, mean ± sd | gain |"
        + (" reference (trained on the test frames) | share of the gap |" if with_ref else ""),
        "| --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if with_ref else ""),
    ]
    for r in result["rows"]:
        gain = r["mean"] - r["checkpoint_miou"]
        line = (
            f"| {r['sequence']} | {r['n']} | {r.get('steps', result['steps'])} | {r['test_frames']} | "
            f"{r['checkpoint_miou']:.3f} | "
            f"{r['mean']:.3f} ± {r['sd']:.3f} | {gain:+.3f} |"
        )
        if with_ref:
            ref = r.get("reference_miou")
            gap = None if ref is None else ref - r["checkpoint_miou"]
            share = f"{gain / gap:.0%}" if gap is not None and gap > 0 else "-"
            line += f" {'-' if ref is None else f'{ref:.3f}'} | {share} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.adapt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="checkpoint", type=Path, required=True, help="best.pt to adapt")
    parser.add_argument("--data", type=Path, help="data set folder (default: the checkpoint's)")
    parser.add_argument("--list", dest="list_name", help="list of the unseen sequences (default: its val list)")
    parser.add_argument("--frames", type=int, nargs="+", default=[5, 10, 20], help="values of N (default 5 10 20)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tune seeds (default 0 1 2)")
    parser.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"steps per fine-tune (default {DEFAULT_STEPS})"
    )
    parser.add_argument(
        "--steps-per-frame",
        type=int,
        metavar="K",
        help="N frames get max(--steps, K * N) steps (each new frame seen as often at every N)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs, adapt.json and adapt.md")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each fine-tune")
    parser.add_argument(
        "--rehearse",
        nargs="?",
        const=REHEARSE_CHECKPOINT,
        metavar="LIST",
        help="mix training frames into each fine-tune (see foramen_train.finetune)",
    )
    parser.add_argument(
        "--rehearse-share",
        type=float,
        default=DEFAULT_REHEARSE_SHARE,
        help=f"share of the new frames in a rehearsed epoch (default {DEFAULT_REHEARSE_SHARE})",
    )
    parser.add_argument(
        "--reference", action="store_true", help="also fine-tune on the scored frames themselves (the ceiling)"
    )
    parser.add_argument("--pick", choices=PICKS, default="first", help="which N frames of the pool (default first)")
    parser.add_argument(
        "--pool", type=float, metavar="SHARE", help="pick from the first SHARE of each sequence; score after it"
    )
    parser.add_argument("--guard", type=int, default=0, help="frames after the pool left unscored (default 0)")
    args = parser.parse_args(argv)
    try:
        import torch

        ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        root = args.data or Path(ckpt["config"]["data"]["root"])
        list_name = args.list_name or ckpt["config"]["data"]["val_list"]
        torch.set_num_threads(args.threads)
        result = run(
            args.checkpoint,
            root,
            list_name,
            args.frames,
            args.seeds,
            args.steps,
            args.out,
            args.threads,
            args.reference,
            args.rehearse,
            args.rehearse_share,
            args.steps_per_frame,
            Selection(args.pick, args.pool, args.guard),
        )
    except (ConfigError, DataError, ExportError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "adapt.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "adapt.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
