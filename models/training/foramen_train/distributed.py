"""Distributed data-parallel helpers (PyTorch's own engine: ``torch.distributed`` + DDP).

``torchrun --nproc_per_node N -m foramen_train.train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them and joins the
process group (``nccl`` on CUDA, ``gloo`` on CPU). Without them (a plain
``python -m foramen_train.train``) everything here degrades to a single process and no
collective is ever called.

Exactness: the training loss and the BatchNorm statistics are computed over the *global*
batch. Both are built from sums over pixels, which :func:`all_reduce_sum` adds up across
ranks with a differentiable all-reduce (its backward all-reduces the gradient), so every
rank sees the loss of the whole global batch and DDP's gradient average yields the
gradient a single process computes on that batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, local rank and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""

    @property
    def distributed(self) -> bool:
        """Whether a process group with more than one process is active."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0


def select_device(device: str, local_rank: int) -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU; or force one."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ValueError(f"LOCAL_RANK {local_rank} but only {count} CUDA device(s) on this node")
    return torch.device("cuda", local_rank)


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` set), pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = select_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size <= 1:
        return DistInfo(device=dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **kwargs)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, backend=backend)


def cleanup() -> None:
    """Leave the process group (no-op when none is active)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """Whether a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, differentiably (identity without a process group).

    The backward pass all-reduces the incoming gradient, so a quantity computed from the
    global sums on every rank back-propagates into each rank's local contribution.
    """
    if not active():
        return tensor
    return _AllReduceSum.apply(tensor)


class _AllReduceSum(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the gradient (sum)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_reduce_detached(tensor: torch.Tensor, op: dist.ReduceOp = dist.ReduceOp.SUM) -> torch.Tensor:
    """Non-differentiable all-reduce of a copy of ``tensor`` (identity without a process group)."""
    out = tensor.detach().clone()
    if active():
        dist.all_reduce(out, op=op)
    return out


def all_gather_detached(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Copies of ``tensor`` from every rank (same shape on each rank), rank order."""
    if not active():
        return [tensor.detach()]
    out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(out, tensor.detach().contiguous())
    return out


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if active():
        dist.barrier()


def broadcast_object(obj: object, src: int = 0) -> object:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself without a process group)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch, on the CPU (gloo).

    PyTorch's :class:`torch.nn.SyncBatchNorm` runs only on accelerators (and DDP refuses
    it on CPU modules), so CPU processes use this layer instead. In training mode under
    an active process group, the batch mean and (biased) variance come from per-channel
    sums all-reduced over the ranks (two passes: mean, then squared deviations), the
    running statistics are updated with the unbiased variance as
    :func:`torch.nn.functional.batch_norm` does, and the gradient flows through the global
    statistics. Otherwise (evaluation, one process) it is plain BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002 (torch's name)
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
        """Batch norm with statistics over every process's batch while training under DDP."""
        if not self.training or not active():
            return super().forward(input)
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        dims = [0, *range(2, input.dim())]
        local = torch.tensor([input.numel() // input.shape[1]], dtype=torch.float64, device=input.device)
        n = float(all_reduce_detached(local))
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.size()}")
        shape = [1, -1] + [1] * (input.dim() - 2)
        mean = all_reduce_sum(input.sum(dims)) / n
        centred = input - mean.view(shape)
        var = all_reduce_sum((centred * centred).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * (n / (n - 1)), alpha=factor)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm(module: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Synchronise every ``BatchNorm*d`` of ``module`` over the process group.

    On CUDA this is :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm`; on the CPU the
    layers become :class:`CPUSyncBatchNorm` (same parameters, buffers and state-dict keys).
    """
    if torch.device(device).type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CPUSyncBatchNorm):
        out = CPUSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            out.weight = module.weight
            out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device))
    return out


__all__ = [
    "CPUSyncBatchNorm",
    "DistInfo",
    "active",
    "all_gather_detached",
    "all_reduce_detached",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "cleanup",
    "convert_sync_batchnorm",
    "select_device",
    "setup",
]
