"""Data-parallel training (torchrun / DDP on gloo) follows single-process training.

Two CPU processes with 4 frames each must train the model one process trains with the
global batch of 8: same data per step, BatchNorm statistics of the global batch, loss
and gradients of the global batch. Checked on the building blocks (loss terms, OHEM,
synchronised BatchNorm) and end to end through ``torchrun ... -m foramen_train.train``.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DistributedSampler

from foramen_train import distributed as D
from foramen_train import train, train_data
from foramen_train.config import ConfigError, config_from_dict
from foramen_train.losses import LossConfig, SegmentationLoss

from conftest import COLOUR_OFF, GEOMETRY_OFF, TINY_MODEL, augment_table, write_dataset

TRAINING = Path(__file__).resolve().parents[1]

LOSS_RTOL = 1e-3
"""Per-epoch training loss: 2 processes vs 1 (relative). Measured: equal to 6 decimals."""
WEIGHT_ATOL = 1e-3
"""Final weights: largest absolute difference (measured about 3e-5 after 6 AdamW steps)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sampler_shards_compose_the_single_process_batches():
    """Step k of every rank together is exactly step k of one process (global batch 8)."""
    data = list(range(37))
    one = list(DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=5, drop_last=True))
    for world in (2, 4):
        local = 8 // world
        shards = []
        for rank in range(world):
            sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=5, drop_last=True)
            shards.append(list(sampler))
        steps = min(len(s) for s in shards) // local
        assert steps == len(one) // 8 == 4
        for k in range(steps):
            union = sorted(i for s in shards for i in s[k * local : (k + 1) * local])
            assert union == sorted(one[k * 8 : (k + 1) * 8])


def test_validation_batches_are_sharded_whole():
    assert train_data.val_batches(10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert train_data.val_batches(10, 4, rank=1, world_size=2) == [[4, 5, 6, 7]]
    shards = [train_data.val_batches(10, 4, r, 3) for r in range(3)]
    assert sorted(b for s in shards for b in s) == train_data.val_batches(10, 4)


def test_global_batch_must_split_evenly():
    cfg = config_from_dict({"data": {"root": "x"}, "model": {"width": 64, "height": 64}, "train": {"batch_size": 8}})
    assert train_data.local_batch_size(cfg, 2) == 4 and train_data.local_batch_size(cfg, 8) == 1
    with pytest.raises(ConfigError, match="train.batch_size: the global batch 8 does not split evenly over 3"):
        train_data.local_batch_size(cfg, 3)


# --- building blocks, two gloo processes started with torch.multiprocessing.spawn ---------

LOSS_CASES = {
    "ce+dice": LossConfig(),
    "class weights": LossConfig(class_weights=[1.0, 2.0, 0.5, 1.5]),
    "ohem above threshold": LossConfig(ohem_thresh=0.2, ohem_min_kept=100),
    "ohem global top-k": LossConfig(ohem_thresh=0.2, ohem_min_kept=1500),
    "ohem all pixels": LossConfig(ohem_thresh=0.2, ohem_min_kept=5000),
}


def _blocks_worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        report: dict[str, float] = {}
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(8, 4, 16, 16, generator=gen) * 2
        target = torch.randint(0, 4, (8, 16, 16), generator=gen)
        target[:, :2] = 255  # unlabelled rows
        target[3, 5:9] = 255
        part = slice(rank * 4, rank * 4 + 4)
        for name, cfg in LOSS_CASES.items():
            full = logits.clone().requires_grad_()
            ref = SegmentationLoss(4, 255, cfg)(full, target)
            ref.backward()
            local = logits[part].clone().requires_grad_()
            loss = SegmentationLoss(4, 255, cfg, sync=True)(local, target[part])
            loss.backward()
            # Every rank holds the global loss; the gradient reaching its own logits is
            # world x the single-process gradient, which DDP's average divides back.
            report[f"loss {name}"] = abs(loss.item() - ref.item()) / abs(ref.item())
            report[f"grad {name}"] = ((local.grad / world - full.grad[part]).abs().max() / full.grad.abs().max()).item()

        x = torch.randn(8, 3, 5, 7, generator=gen) * 3 + 1
        upstream = torch.randn(8, 3, 5, 7, generator=gen)
        plain = nn.BatchNorm2d(3)
        with torch.no_grad():
            plain.weight.uniform_(0.5, 1.5, generator=gen)
            plain.bias.uniform_(-0.5, 0.5, generator=gen)
        synced = D.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3)))[0]
        synced.load_state_dict(plain.state_dict())
        assert isinstance(synced, D.CPUSyncBatchNorm)
        full = x.clone().requires_grad_()
        y_ref = plain(full)
        (y_ref * upstream).sum().backward()
        local = x[part].clone().requires_grad_()
        y = synced(local)
        (y * upstream[part]).sum().backward()  # the sum over ranks is the reference objective
        weight_grad = D.all_reduce_detached(synced.weight.grad)
        report["bn output"] = (y - y_ref[part]).abs().max().item()
        report["bn input grad"] = (local.grad - full.grad[part]).abs().max().item()
        report["bn weight grad"] = (weight_grad - plain.weight.grad).abs().max().item()
        report["bn running mean"] = (synced.running_mean - plain.running_mean).abs().max().item()
        report["bn running var"] = (synced.running_var - plain.running_var).abs().max().item()
        synced.eval(), plain.eval()
        report["bn eval"] = (synced(x[part]) - plain(x[part])).abs().max().item()
        Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    finally:
        dist.destroy_process_group()


def test_global_loss_and_sync_batchnorm_match_one_process(tmp_path):
    mp.spawn(_blocks_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        print(f"rank {rank}: " + ", ".join(f"{k} {v:.1e}" for k, v in report.items()))
        for key, value in report.items():
            assert value < 1e-5, (rank, key, value)


# --- end to end: torchrun with 2 processes vs one process ------------------------------

CONFIG = (
    """
[data]
root = "{root}"
"""
    + augment_table(**GEOMETRY_OFF, **COLOUR_OFF)
    + TINY_MODEL
    + """[train]
epochs = 3
batch_size = 8
val_batch_size = 4
lr = 5e-3
warmup_epochs = 0.5
seed = 3
threads = 1
[train.loss]
aux_weight = 0.4
[export]
parity_frames = 2
"""
)


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "metrics.csv").open()))


def test_torchrun_two_processes_train_what_one_process_trains(tmp_path):
    data = write_dataset(tmp_path / "data", n_train=16, n_val=6)
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.format(root=data))
    common = ["--config", str(config), "--device", "cpu", "--no-progress"]

    assert train.main([*common, "--out", str(tmp_path / "one")]) == 0

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TRAINING)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "foramen_train.train",
        *common,
        "--out",
        str(tmp_path / "two"),
    ]
    proc = subprocess.run(cmd, cwd=TRAINING, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "2 processes (gloo), 4 frames each; global batch 8" in proc.stdout
    assert proc.stdout.count("epoch 1/3:") == 1  # only rank 0 prints

    two, one = tmp_path / "two", tmp_path / "one"
    assert {p.name for p in two.iterdir()} == {p.name for p in one.iterdir()}
    rows_one, rows_two = _rows(one), _rows(two)
    assert len(rows_one) == len(rows_two) == 3
    for a, b in zip(rows_one, rows_two):
        print(
            f"epoch {a['epoch']}: train_loss {a['train_loss']} (1 process) vs {b['train_loss']} (2 processes), "
            f"val_loss {a['val_loss']} vs {b['val_loss']}, val_miou {a['val_miou']} vs {b['val_miou']}"
        )
        for key in ("train_loss", "val_loss"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=LOSS_RTOL), (a["epoch"], key)
        assert float(b["val_miou"]) == pytest.approx(float(a["val_miou"]), abs=1e-3)
    assert float(rows_one[-1]["train_loss"]) < float(rows_one[0]["train_loss"])  # it did learn

    w_one = torch.load(one / "last.pt", weights_only=True)["state_dict"]
    w_two = torch.load(two / "last.pt", weights_only=True)["state_dict"]
    assert w_one.keys() == w_two.keys()
    worst = max((w_one[k].double() - w_two[k].double()).abs().max().item() for k in w_one)
    print(f"final weights: max |difference| {worst:.2e}")
    assert worst < WEIGHT_ATOL, worst
    summary = json.loads((two / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["device"] == "cpu"
