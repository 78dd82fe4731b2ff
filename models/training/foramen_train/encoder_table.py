"""Encoder comparison at equal epochs: scratch vs the pretrained EfficientNet-Lite variants.

CLI (from ``models/training``)::

    python -m foramen_train.encoder_table --config configs/encoder-table.toml \\
        --out runs/encoder-table --epochs 10 --size 256 \\
        --encoders stdc-scratch efficientnet-lite0 efficientnet-lite1 efficientnet-lite2 \\
        --seeds 0 [--set section.key=value ...]

Every run is a normal training run (``foramen_train.train``) of the same config with the
same epoch count, input size and seed list; only ``model.encoder`` differs, so the decoder,
loss, augmentation and schedule are shared. The time budget of the config is switched off
(``train.max_minutes = 0``): equal epochs, not equal minutes. The scratch encoder learns
from random weights, so it never inherits the pretrained encoder's settings (learning-rate
multiplier, frozen stem or frozen first epochs) and has the bundled scratch model's width
(base 16, two blocks a stage); the Lite encoders keep the config's settings.

Runs live in ``OUT/<encoder>-s<seed>``; one whose ``summary.json`` exists is not trained
again, so a table grows over several invocations (e.g. every encoder on seed 0, then the
winner and scratch on seeds 1 and 2). The table covers every run folder in ``OUT``.

For each encoder the first seed's model is also quantized to INT8 (QDQ, the recipe's
calibration on training frames) and both are timed with ONNX Runtime on the CPU (batch 1,
``--threads`` threads, median of ``--repeats`` runs): the model alone, as the Rust runtime
calls it. Accuracy is validation mIoU over the data set's classes not ignored (void is
ignored for vocalfolds) at the **last** epoch (no selection on the validation set), with the
best epoch's value beside it. The winner is the Lite encoder with the highest mean at the
last epoch; it is tested against scratch with Welch's t-test.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from .ablation import last_epoch_miou, welch_p
from .config import load_config
from .encoders import ENCODERS, STDC
from .quantize import quantize
from .sweep import ort_latency_ms

log = logging.getLogger("foramen_train.encoder_table")

SCRATCH_OVERRIDES = [
    "model.base_channels=16",
    "model.stage_blocks=[2, 2, 2]",
    "train.encoder_lr_mult=1.0",
    "train.freeze_encoder_epochs=0",
    "train.freeze_stem=false",
]
"""The bundled scratch model's encoder (``configs/vocalfolds.toml``: STDC base 16, two blocks
a stage), with what a randomly initialised encoder needs: its full learning rate from the
first step."""


def run_overrides(encoder: str, seed: int, size: int, extra: list[str]) -> list[str]:
    """``--set`` overrides for one run of the table."""
    items = [
        f'model.encoder="{encoder}"',
        f"model.width={size}",
        f"model.height={size}",
        f"train.seed={seed}",
        "train.max_minutes=0",
        "train.fit_epochs_to_time=false",
        *extra,
    ]
    return items + (SCRATCH_OVERRIDES if encoder == STDC else [])


def train_run(config: Path, run_dir: Path, epochs: int, threads: int, overrides: list[str]) -> None:
    """Train one run into ``run_dir`` unless its summary exists."""
    if (run_dir / "summary.json").is_file():
        log.info("%s: already trained", run_dir.name)
        return
    cmd = [sys.executable, "-m", "foramen_train.train", "--config", str(config), "--out", str(run_dir)]
    cmd += ["--epochs", str(epochs), "--threads", str(threads), "--no-progress"]
    for item in overrides:
        cmd += ["--set", item]
    log.info("%s: %s", run_dir.name, " ".join(cmd))
    subprocess.run(cmd, check=True)


def speed(run_dir: Path, config: Path, threads: int, repeats: int) -> dict[str, Any]:
    """FP32 and INT8 ONNX Runtime CPU times of a run's model (cached in ``latency.json``)."""
    cached = run_dir / "latency.json"
    if cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    fp32 = Path(summary["onnx"])
    int8 = fp32.with_suffix(".int8.onnx")
    cfg = load_config(config)
    quantize(fp32, int8, cfg.data_root(), cfg.data.train_list, frames=32, method="minmax")
    result = {
        "fp32": ort_latency_ms(fp32, threads, repeats),
        "int8": ort_latency_ms(int8, threads, repeats),
        "threads": threads,
        "repeats": repeats,
    }
    cached.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def mean_sd(values: list[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (0 for one value)."""
    return {
        "values": values,
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def collect(out: Path, config: Path, threads: int, repeats: int) -> dict[str, Any]:
    """Every finished run in ``out``, grouped by encoder, with the first seed's timings."""
    rows: dict[str, Any] = {}
    for encoder in ENCODERS:
        runs = sorted(
            (int(d.name.rsplit("-s", 1)[1]), d)
            for d in out.glob(f"{encoder}-s*")
            if (d / "summary.json").is_file() and d.name.rsplit("-s", 1)[1].isdigit()
        )
        if not runs:
            continue
        summaries = [json.loads((d / "summary.json").read_text(encoding="utf-8")) for _, d in runs]
        first = summaries[0]
        rows[encoder] = {
            "seeds": [s for s, _ in runs],
            "epochs": sorted({s["epochs"] for s in summaries}),
            "params": first["params"],
            "flops": first["flops"],
            "seconds_per_step": statistics.median(s["seconds_per_step"] for s in summaries),
            "last_miou": mean_sd([last_epoch_miou(d) for _, d in runs]),
            "best_miou": mean_sd([s["val_miou"] for s in summaries]),
            "latency": speed(runs[0][1], config, threads, repeats),
        }
    return rows


def verdict(rows: dict[str, Any]) -> dict[str, Any] | None:
    """The best Lite encoder at the last epoch against scratch (``None`` without both)."""
    lite = {k: v for k, v in rows.items() if k != STDC}
    if STDC not in rows or not lite:
        return None
    winner = max(lite, key=lambda k: lite[k]["last_miou"]["mean"])
    a, b = rows[winner]["last_miou"], rows[STDC]["last_miou"]
    return {
        "winner": winner,
        "gain": a["mean"] - b["mean"],
        "welch_p": welch_p(a["values"], b["values"]),
        "seeds": [len(a["values"]), len(b["values"])],
    }


def markdown(rows: dict[str, Any], size: int) -> str:
    """The README table."""
    lines = [
        "| encoder | seeds | params | GFLOPs | val mIoU, last epoch: mean ± sd | per seed | best epoch: mean "
        "| s/step | ORT CPU FP32 | INT8 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        last, best, lat = r["last_miou"], r["best_miou"], r["latency"]
        per_seed = ", ".join(f"{v:.3f}" for v in last["values"])
        lines.append(
            f"| {name} | {len(r['seeds'])} | {r['params']:,} | {r['flops'] / 1e9:.2f} | "
            f"{last['mean']:.3f} ± {last['std']:.3f} | {per_seed} | {best['mean']:.3f} | "
            f"{r['seconds_per_step']:.2f} | {lat['fp32']['median_ms']:.1f} ms | {lat['int8']['median_ms']:.1f} ms |"
        )
    v = verdict(rows)
    lines.append("")
    lines.append(f"Input {size}x{size}; epochs {sorted({e for r in rows.values() for e in r['epochs']})}.")
    if v is not None:
        lines.append(
            f"Winner {v['winner']}: {v['gain']:+.3f} mIoU over scratch at the last epoch "
            f"(seeds {v['seeds'][0]} vs {v['seeds'][1]}, Welch p = {v['welch_p']:.3g})."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="base TOML training config")
    parser.add_argument("--out", type=Path, required=True, help="table folder (one run folder per encoder and seed)")
    parser.add_argument("--epochs", type=int, required=True, help="epochs of every run")
    parser.add_argument("--size", type=int, required=True, help="square input size of every run")
    parser.add_argument("--encoders", nargs="+", choices=ENCODERS, default=list(ENCODERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for training and timing")
    parser.add_argument("--repeats", type=int, default=100, help="timed ONNX Runtime runs per model")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.size % 32:
        parser.error(f"--size {args.size}: must be a multiple of 32")

    args.out.mkdir(parents=True, exist_ok=True)
    # Seeds outside, encoders inside: an interrupted table has every encoder's first seed.
    for seed in args.seeds:
        for encoder in args.encoders:
            overrides = run_overrides(encoder, seed, args.size, args.overrides)
            train_run(args.config, args.out / f"{encoder}-s{seed}", args.epochs, args.threads, overrides)
    rows = collect(args.out, args.config, args.threads, args.repeats)
    (args.out / "table.json").write_text(
        json.dumps({"rows": rows, "verdict": verdict(rows)}, indent=2) + "\n", encoding="utf-8"
    )
    table = markdown(rows, args.size)
    (args.out / "table.md").write_text(table, encoding="utf-8")
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
