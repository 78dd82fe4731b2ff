"""Inference time of the recipe's models under PyTorch (CUDA or CPU): the GPU reference.

Latency does not depend on the weights, so each model is built from a training config
(plus ``--set`` overrides), or loaded from a ``best.pt`` checkpoint. One forward pass
of batch 1 (and optionally a larger batch) is timed with CUDA events after warm-up, in
FP32 and, on CUDA, under FP16 autocast; the median and p90 per frame are reported.

CLI (from ``models/training``)::

    python -m foramen_train.torch_latency --config configs/vocalfolds.toml \\
        [--set model.width=512 ...] [--checkpoint RUN/best.pt] [--device cuda] \\
        [--repeats 300] [--batch 1 --batch 8] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, load_config
from .dataset_spec import DataError, load_dataset_spec
from .export import load_checkpoint
from .model import PPLiteSeg, count_parameters, estimate_flops


def time_forward_ms(
    model: PPLiteSeg, batch: int, device: torch.device, repeats: int, warmup: int, half: bool
) -> list[float]:
    """Wall time (ms) of each of ``repeats`` forward passes of ``batch`` frames."""
    cfg = model.cfg
    x = torch.rand(batch, 3, cfg.height, cfg.width, device=device)
    times: list[float] = []
    cuda = device.type == "cuda"
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.float16)
        if half
        else torch.autocast(device_type=device.type, enabled=False)
    )
    with torch.inference_mode(), autocast:
        for i in range(warmup + repeats):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(x)
                end.record()
                end.synchronize()
                elapsed = start.elapsed_time(end)
            else:
                t0 = time.perf_counter()
                model(x)
                elapsed = (time.perf_counter() - t0) * 1000.0
            if i >= warmup:
                times.append(elapsed)
    return times


def summarise(times: list[float], batch: int) -> dict[str, float]:
    """Median / p90 / min per forward pass and per frame."""
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    median = statistics.median(ordered)
    return {
        "median_ms": median,
        "p90_ms": p90,
        "min_ms": ordered[0],
        "median_ms_per_frame": median / batch,
        "frames_per_s": 1000.0 * batch / median,
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.torch_latency", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="training config (TOML) whose [model] to build")
    source.add_argument("--checkpoint", type=Path, help="a run's best.pt")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, as in foramen_train.train",
    )
    parser.add_argument("--num-classes", type=int, help="class count (default: from the config's data set)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (default: 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU")
    parser.add_argument("--name", default="", help="label for the report")
    parser.add_argument("--json", type=Path, help="append one JSON line per measurement to this file")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    try:
        if args.checkpoint is not None:
            model, _ = load_checkpoint(args.checkpoint)
        else:
            cfg = load_config(args.config, args.overrides)
            if args.num_classes is not None:
                num_classes = args.num_classes
            else:
                num_classes = load_dataset_spec(cfg.data_root(), cfg.data.classes, cfg.data.ignore_index).num_classes
            model = PPLiteSeg(cfg.model.build(num_classes))
    except (ConfigError, DataError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model.eval()
    mcfg = model.cfg
    params, flops = count_parameters(model), estimate_flops(model, mcfg.width, mcfg.height)
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"cpu, {args.threads} threads"
    name = args.name or (args.checkpoint.parent.name if args.checkpoint else args.config.stem)
    precisions = [False, True] if device.type == "cuda" else [False]
    for batch in args.batch or [1]:
        for half in precisions:
            stats = summarise(time_forward_ms(model, batch, device, args.repeats, args.warmup, half), batch)
            row: dict[str, Any] = {
                "name": name,
                "device": device_name,
                "torch": torch.__version__,
                "input": f"{mcfg.width}x{mcfg.height}",
                "params": params,
                "gflops": round(flops / 1e9, 3),
                "batch": batch,
                "precision": "fp16-autocast" if half else "fp32",
                **{k: round(v, 4) for k, v in stats.items()},
            }
            print(json.dumps(row), flush=True)
            if args.json is not None:
                with args.json.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
