"""Train a segmentation model from a TOML config and export the best epoch to ONNX.

CLI::

    python -m foramen_train.train --config configs/lumbar-synth.toml [--out RUN_DIR]
        [--epochs N] [--batch-size N] [--lr X] [--threads N] [--data-root DIR]
        [--set section.key=value ...] [--device auto|cpu|cuda] [--no-progress]

    torchrun --nproc_per_node N -m foramen_train.train --config ...   # data parallel

The run folder receives ``config.toml`` (the effective configuration), ``metrics.csv``
(one row per epoch), ``best.pt`` (the epoch with the best validation mIoU), ``last.pt``
(the last epoch), the exported ONNX model of the best epoch and ``summary.json``.

Under torchrun every process trains a replica wrapped in DistributedDataParallel
(``nccl`` on CUDA, ``gloo`` on the CPU) on its share of each global batch
(``train.batch_size`` / world size), BatchNorm is synchronised over the processes and
the loss is that of the global batch, so the run follows single-process training with
the same global batch. Validation is sharded by batches and the confusion matrix and
loss sums are all-reduced. Only rank 0 writes files and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import distributed as D
from .config import Config, ConfigError, load_config, to_toml
from .data import SegmentationDataset
from .dataset_spec import DataError, DatasetSpec
from .epoch_loop import TrainingRun
from .export import ExportError
from .gan import GanError
from .network import Network, build_network
from .train_data import build_datasets, build_loaders, local_batch_size

RUNS_DIR = Path(__file__).resolve().parents[1] / "runs"
"""Default parent of run folders (``models/training/runs``, ignored by git)."""


def prepare_run_dir(cfg: Config, out: Path | None) -> Path:
    """Create the run folder (refusing a non-empty one)."""
    if out is None:
        stem = Path(cfg.source).stem or "run"
        out = RUNS_DIR / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: run folder exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _log_setup(
    cfg: Config,
    info: D.DistInfo,
    spec: DatasetSpec,
    train_ds: SegmentationDataset,
    val_ds: SegmentationDataset,
    net: Network,
    local_batch: int,
    run_dir: Path | None,
    log: Callable[..., None],
) -> None:
    model_cfg = net.model_cfg
    synthetic = f" + {train_ds.synthetic_count} GAN pairs per epoch" if train_ds.synthetic is not None else ""
    log(
        f"dataset {spec.name!r} at {cfg.data_root()}: "
        f"{len(train_ds.pairs)} train{synthetic} / {len(val_ds)} val frames "
        f"({'cached' if train_ds.cached else 'not cached'}), classes {spec.class_names}"
    )
    log(
        f"model {model_cfg.width}x{model_cfg.height}, decoder {model_cfg.decoder}, encoder {model_cfg.encoder}"
        f"{'' if model_cfg.encoder != 'stdc-scratch' else f' base {model_cfg.base_channels}'}"
        f"{f' from {cfg.train.init_from}' if cfg.train.init_from else ''}: "
        f"{net.params:,} params, {net.flops / 1e9:.3f} GFLOPs/frame; run folder {run_dir}"
    )
    where = (
        f"{info.world_size} processes ({info.backend}), {local_batch} frames each" if info.distributed else "1 process"
    )
    log(f"device {info.device}, {where}; global batch {cfg.train.batch_size}")


def train(
    cfg: Config,
    run_dir: Path | None,
    progress: bool = True,
    overrides: list[str] | None = None,
    dist_info: D.DistInfo | None = None,
    export: bool = True,
) -> dict[str, Any]:
    """Run a whole training; return the summary also written to ``summary.json``.

    ``export=False`` skips the ONNX export (experiments that only score checkpoints).

    ``dist_info`` (from :func:`foramen_train.distributed.setup`) selects the device and,
    under torchrun, this process's rank; without it the run is single-process on the CPU.
    Only rank 0 needs ``run_dir``, writes files and returns the summary (other ranks
    return an empty dict).

    The steps: :func:`~foramen_train.train_data.build_datasets`,
    :func:`~foramen_train.network.build_network`, :func:`~foramen_train.train_data.build_loaders`,
    then per epoch ``TrainingRun.train_epoch`` and ``TrainingRun.end_epoch`` (validation,
    logging, checkpoints), and ``TrainingRun.finish`` (ONNX export, ``summary.json``); see
    :mod:`foramen_train.epoch_loop`.
    """
    info = dist_info or D.DistInfo()
    log = print if info.is_main else (lambda *args, **kwargs: None)
    local_batch = local_batch_size(cfg, info.world_size)
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    spec, train_ds, val_ds = build_datasets(cfg)
    net = build_network(cfg, spec, info)
    _log_setup(cfg, info, spec, train_ds, val_ds, net, local_batch, run_dir, log)
    if info.is_main:
        assert run_dir is not None, "rank 0 needs a run folder"
        (run_dir / "config.toml").write_text(
            to_toml(
                cfg.to_dict(),
                header=f"Effective configuration of this run.\nSource: {cfg.source}\nOverrides: {overrides or 'none'}",
            ),
            encoding="utf-8",
        )
    loaders = build_loaders(cfg, info, train_ds, val_ds, local_batch, log)
    # The average follows the replica's weights and BatchNorm statistics (use_buffers).
    ema = None
    if cfg.train.ema_decay > 0:
        ema = AveragedModel(net.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema_decay), use_buffers=True)
    run = TrainingRun(cfg, info, log, progress and info.is_main, spec, train_ds, val_ds, net, loaders, ema, run_dir)
    initial = run.start()
    epoch = 0
    while epoch < run.state.epochs:
        epoch += 1
        epoch_start = time.perf_counter()
        train_loss = run.train_epoch(epoch)
        run.state.step_times.append((time.perf_counter() - epoch_start) / loaders.steps)  # batch preparation included
        if run.end_epoch(epoch, epoch_start, train_loss):
            break
    return run.finish(initial, export)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="TOML training config")
    parser.add_argument("--out", type=Path, help="run folder (default: models/training/runs/<config>-<time>)")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--batch-size", type=int, help="override train.batch_size")
    parser.add_argument("--lr", type=float, help="override train.lr")
    parser.add_argument("--threads", type=int, help="override train.threads")
    parser.add_argument("--data-root", type=Path, help="override data.root (relative to the current folder)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key (TOML value), e.g. --set data.augment.hflip=0",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto (default): cuda:LOCAL_RANK when CUDA is available, else the CPU",
    )
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = parser.parse_args(argv)

    overrides = list(args.sets)
    for flag, key in (
        ("epochs", "train.epochs"),
        ("batch_size", "train.batch_size"),
        ("lr", "train.lr"),
        ("threads", "train.threads"),
    ):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.data_root is not None:
        overrides.append(f"data.root={json.dumps(str(args.data_root.resolve()))}")
    try:
        info = D.setup(args.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        cfg = load_config(args.config, overrides)
        local_batch_size(cfg, info.world_size)
        run_dir, error = None, None
        if info.is_main:
            try:
                run_dir = prepare_run_dir(cfg, args.out)
            except ConfigError as err:
                error = str(err)
        error = D.broadcast_object(error)
        if error is not None:
            raise ConfigError(error)
        train(cfg, run_dir, progress=not args.no_progress, overrides=overrides, dist_info=info)
    except (ConfigError, DataError, ExportError, GanError) as err:
        prefix = f"[rank {info.rank}] " if info.distributed else ""
        print(f"{prefix}error: {err}", file=sys.stderr)
        return 1
    finally:
        D.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
