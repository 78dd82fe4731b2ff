"""GAN-augmentation ablation: the same recipe with and without synthetic pairs, over seeds.

CLI::

    python -m foramen_train.ablation --config configs/vocalfolds-ablation.toml \\
        --generator runs/gan-vocalfolds/generator.pt --ratio 0.5 --seeds 0 1 2 \\
        --out runs/ablation-gan [--set section.key=value ...]

For each seed it trains the config twice: ``real`` (``data.gan`` off) and ``gan``
(``data.gan.generator`` and ``data.gan.ratio`` set). Both arms get the same budget of
optimisation steps: an epoch with synthetic pairs has more steps, so the ``gan`` arm runs
``round(epochs * real_steps / gan_steps)`` epochs. A run whose ``summary.json`` exists is
not repeated, so an interrupted ablation resumes.

It writes ``ablation.json`` and ``ablation.md`` (the table for the README): validation
mIoU at the last epoch (no selection on the validation set) and at the best epoch, per
seed, with mean, sample standard deviation and Welch's t-test between the arms. The
verdict "helps" needs the mean gain at the last epoch to exceed the larger of the two
arms' standard deviations.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from .config import ConfigError, load_config
from .dataset_spec import DataError
from .export import ExportError
from .gan import GanError
from .train import train
from .train_data import build_datasets

ARMS = ("real", "gan")


def equal_step_epochs(epochs: int, real_frames: int, synthetic_frames: int, batch_size: int) -> int:
    """Epochs of the arm with synthetic pairs that match ``epochs`` real-only epochs in steps."""
    real_steps = real_frames // batch_size
    gan_steps = (real_frames + synthetic_frames) // batch_size
    return max(1, round(epochs * real_steps / gan_steps))


def last_epoch_miou(run_dir: Path) -> float:
    """Validation mIoU of the last row of a run's ``metrics.csv``."""
    with (run_dir / "metrics.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise DataError(f"{run_dir / 'metrics.csv'}: no epochs")
    return float(rows[-1]["val_miou"])


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test (``nan`` when a group has no spread)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2 or (statistics.stdev(a) == 0 and statistics.stdev(b) == 0):
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def summarize(results: dict[str, dict[int, dict[str, float]]]) -> dict[str, Any]:
    """Means, spreads, the test and the verdict from ``results[arm][seed]`` metrics."""
    out: dict[str, Any] = {"arms": {}}
    for arm in ARMS:
        runs = results[arm]
        entry: dict[str, Any] = {"seeds": sorted(runs)}
        for metric in ("last_miou", "best_miou"):
            values = [runs[s][metric] for s in sorted(runs)]
            entry[metric] = {
                "values": values,
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
        entry["steps"] = [runs[s]["steps"] for s in sorted(runs)]
        out["arms"][arm] = entry
    real, gan = out["arms"]["real"]["last_miou"], out["arms"]["gan"]["last_miou"]
    gain = gan["mean"] - real["mean"]
    spread = max(real["std"], gan["std"])
    out["gain_last_miou"] = gain
    out["spread"] = spread
    out["welch_p_last_miou"] = welch_p(real["values"], gan["values"])
    out["helps"] = bool(gain > spread)
    return out


def markdown(summary: dict[str, Any], ratio: float, generator: str) -> str:
    """The README table."""
    lines = [
        "| arm | seeds | steps | val mIoU, last epoch: mean ± sd | per seed | val mIoU, best epoch: mean ± sd |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for arm in ARMS:
        a = summary["arms"][arm]
        name = "real frames only" if arm == "real" else f"+ GAN pairs (ratio {ratio:g})"
        per_seed = ", ".join(f"{v:.3f}" for v in a["last_miou"]["values"])
        steps = sorted(set(a["steps"]))
        lines.append(
            f"| {name} | {len(a['seeds'])} | {'/'.join(str(s) for s in steps)} | "
            f"{a['last_miou']['mean']:.3f} ± {a['last_miou']['std']:.3f} | {per_seed} | "
            f"{a['best_miou']['mean']:.3f} ± {a['best_miou']['std']:.3f} |"
        )
    p = summary["welch_p_last_miou"]
    lines.append("")
    lines.append(
        f"Gain {summary['gain_last_miou']:+.3f} against a seed spread of {summary['spread']:.3f} "
        f"(Welch p = {'n/a' if math.isnan(p) else f'{p:.2f}'}): "
        + ("**helps** beyond the seed spread." if summary["helps"] else "does **not** help beyond the seed spread.")
    )
    lines.append(f"Generator: `{generator}`.")
    return "\n".join(lines) + "\n"


def run_ablation(
    config: Path,
    generator: Path,
    ratio: float,
    seeds: list[int],
    out: Path,
    overrides: list[str] | None = None,
    log=print,
) -> dict[str, Any]:
    """Train every (arm, seed) run not yet done, then write and return the summary."""
    base = load_config(config, list(overrides or []))
    _, train_ds, _ = build_datasets(base)
    real_frames = len(train_ds.pairs)
    synthetic = int(round(ratio * real_frames))
    gan_epochs = equal_step_epochs(base.train.epochs, real_frames, synthetic, base.train.batch_size)
    arm_sets = {
        "real": ["data.gan.ratio=0"],
        "gan": [
            f"data.gan.generator={json.dumps(str(Path(generator).resolve()))}",
            f"data.gan.ratio={ratio}",
            f"train.epochs={gan_epochs}",
        ],
    }
    log(
        f"ablation: {real_frames} real frames, {synthetic} GAN pairs per epoch; real arm {base.train.epochs} epochs, "
        f"gan arm {gan_epochs} epochs (equal steps); seeds {seeds}"
    )
    results: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in ARMS}
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for arm in ARMS:
            run_dir = out / f"{arm}-seed{seed}"
            if not (run_dir / "summary.json").is_file():
                cfg = load_config(config, [*(overrides or []), f"train.seed={seed}", *arm_sets[arm]])
                run_dir.mkdir(parents=True, exist_ok=True)
                log(f"--- {arm}, seed {seed} -> {run_dir}", flush=True)
                train(cfg, run_dir, progress=False, overrides=[f"train.seed={seed}", *arm_sets[arm]])
            doc = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            results[arm][seed] = {
                "last_miou": last_epoch_miou(run_dir),
                "best_miou": float(doc["val_miou"]),
                "steps": int(doc.get("steps", 0)),
            }
    summary = summarize(results)
    summary.update(
        {
            "config": str(config),
            "generator": str(generator),
            "ratio": ratio,
            "real_frames": real_frames,
            "synthetic_per_epoch": synthetic,
            "overrides": overrides or [],
        }
    )
    (out / "ablation.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "ablation.md").write_text(markdown(summary, ratio, str(generator)), encoding="utf-8")
    log(markdown(summary, ratio, str(generator)))
    return summary


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--generator", type=Path, required=True, help="generator.pt from foramen_train.gan train")
    parser.add_argument("--ratio", type=float, default=0.5, help="GAN pairs per real frame per epoch (default 0.5)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)
    if args.ratio <= 0:
        print("error: --ratio must be > 0", file=sys.stderr)
        return 1
    if len(args.seeds) < 2 or len(set(args.seeds)) != len(args.seeds):
        print("error: --seeds needs at least two distinct seeds (the spread is the point)", file=sys.stderr)
        return 1
    try:
        run_ablation(args.config, args.generator, args.ratio, args.seeds, args.out, args.sets)
    except (ConfigError, DataError, ExportError, GanError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
