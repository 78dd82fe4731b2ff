"""Speed/accuracy sweep: train several widths and input sizes, time each, write a table.

Each variant is a normal training run (``foramen_train.train`` with ``--set`` overrides
of one base config) in its own run folder, so every row can be re-run or inspected on its
own. A variant whose run folder already holds ``summary.json`` is not trained again, so
an interrupted sweep resumes where it stopped.

Latency is the median of ``--repeats`` ONNX Runtime CPU runs of the exported model on one
frame (batch 1, ``intra_op_num_threads = --threads``, sequential execution, full graph
optimisation) after warm-up: the model alone, as the Rust runtime calls it. The whole
per-frame cost in Rust (resize, normalise, model, softmax) is in ``cargo bench --bench
stages``.

CLI (from ``models/training``)::

    python -m foramen_train.sweep --config configs/vocalfolds.toml --out runs/sweep-vocalfolds \
        --epochs 50 --variant w16-320:16:320 --variant w24-320:24:320 ...
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("foramen_train.sweep")


@dataclass(frozen=True)
class Variant:
    """One row of the table: a name, an encoder width and a square input size."""

    name: str
    base_channels: int
    size: int

    @staticmethod
    def parse(text: str) -> Variant:
        """Parse ``NAME:BASE_CHANNELS:SIZE`` (e.g. ``w24-384:24:384``)."""
        parts = text.split(":")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME:BASE_CHANNELS:SIZE")
        name, base, size = parts
        try:
            variant = Variant(name, int(base), int(size))
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: {err}") from err
        if variant.base_channels < 2 or variant.base_channels % 2 or variant.size % 32:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: base channels must be even, size a multiple of 32")
        return variant

    def overrides(self) -> list[str]:
        """``--set`` overrides that turn the base config into this variant.

        The decoder, SPPM and head widths scale with the encoder width (the base config's
        ratios at ``base_channels = 16``: decoder 1x/2x/4x, SPPM 4x, head 2x).
        """
        b = self.base_channels
        return [
            f"model.width={self.size}",
            f"model.height={self.size}",
            f"model.base_channels={b}",
            f"model.decoder_channels=[{b}, {2 * b}, {4 * b}]",
            f"model.sppm_channels={4 * b}",
            f"model.head_channels={2 * b}",
        ]


def ort_latency_ms(onnx_path: Path, threads: int, repeats: int, warmup: int = 10) -> dict[str, float]:
    """Median / p90 wall time (ms) of one batch-1 ONNX Runtime CPU run of ``onnx_path``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in inp.shape]
    frame = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        session.run(None, {inp.name: frame})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, {inp.name: frame})
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
        "min_ms": times[0],
    }


def run_variant(variant: Variant, config: Path, out: Path, epochs: int, threads: int) -> dict:
    """Train ``variant`` into ``out/<name>`` unless its summary exists; return the summary."""
    run_dir = out / variant.name
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        log.info("%s: already trained (%s)", variant.name, summary_path)
    else:
        cmd = [
            sys.executable,
            "-m",
            "foramen_train.train",
            "--config",
            str(config),
            "--out",
            str(run_dir),
            "--epochs",
            str(epochs),
            "--threads",
            str(threads),
            "--no-progress",
        ]
        for item in variant.overrides():
            cmd += ["--set", item]
        log.info("%s: %s", variant.name, " ".join(cmd))
        subprocess.run(cmd, check=True)
    return json.loads(summary_path.read_text())


def table_markdown(rows: list[dict]) -> str:
    """The speed/accuracy table (one row per variant) as Markdown."""
    lines = [
        "| variant | input | base ch. | params | GFLOPs | val mIoU | mIoU w/o void | best epoch "
        "| ORT CPU median (p90) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['size']}x{r['size']} | {r['base_channels']} | {r['params']:,} | "
            f"{r['flops'] / 1e9:.3f} | {r['val_miou']:.3f} | {r['miou_no_void']:.3f} | {r['best_epoch']} | "
            f"{r['latency']['median_ms']:.1f} ms ({r['latency']['p90_ms']:.1f}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="base TOML training config")
    parser.add_argument("--out", type=Path, required=True, help="sweep folder (one run folder per variant)")
    parser.add_argument(
        "--variant", type=Variant.parse, action="append", required=True, help="NAME:BASE_CHANNELS:SIZE, repeatable"
    )
    parser.add_argument("--epochs", type=int, required=True, help="epochs for every variant (same budget)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for training and timing")
    parser.add_argument("--repeats", type=int, default=200, help="timed ONNX Runtime runs per variant")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in args.variant:
        summary = run_variant(variant, args.config, args.out, args.epochs, args.threads)
        onnx_path = args.out / variant.name / Path(summary["onnx"]).name
        latency = ort_latency_ms(onnx_path, args.threads, args.repeats)
        ious = {k: v for k, v in summary["val_iou"].items() if v == v}
        no_void = [v for k, v in ious.items() if k != "void"]
        rows.append(
            {
                "name": variant.name,
                "size": variant.size,
                "base_channels": variant.base_channels,
                "params": summary["params"],
                "flops": summary["flops"],
                "val_miou": summary["val_miou"],
                "miou_no_void": float(np.mean(no_void)) if no_void else float("nan"),
                "val_iou": summary["val_iou"],
                "best_epoch": summary["best_epoch"],
                "epochs": summary["epochs"],
                "train_seconds": summary["seconds"],
                "latency": latency,
                "onnx": str(onnx_path),
            }
        )
        (args.out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
        (args.out / "table.md").write_text(table_markdown(rows))
        log.info("%s: val mIoU %.3f, %.1f ms", variant.name, summary["val_miou"], latency["median_ms"])
    print(table_markdown(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
