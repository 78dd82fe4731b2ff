"""The optimizer and its schedule.

Parameter groups (no weight decay on norms and biases; the encoder's groups carry
``train.encoder_lr_mult``), the learning-rate curve (linear warmup, then poly or cosine
decay) and, for ``train.fit_epochs_to_time``, the number of epochs that fits the budget.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import Config
from .model import PPLiteSeg


def build_optimizer(model: PPLiteSeg, cfg: Config) -> torch.optim.Optimizer:
    """AdamW or SGD; norms and biases get no weight decay; the encoder's groups carry
    ``lr_mult = train.encoder_lr_mult`` (the schedule multiplies every group's rate by it)."""
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    groups = []
    for in_encoder, mult in ((True, cfg.train.encoder_lr_mult), (False, 1.0)):
        params = [p for p in model.parameters() if (id(p) in encoder_ids) == in_encoder]
        for decayed in (True, False):
            chosen = [p for p in params if (p.ndim > 1) == decayed]
            if chosen:
                groups.append(
                    {"params": chosen, "weight_decay": cfg.train.weight_decay if decayed else 0.0, "lr_mult": mult}
                )
    if cfg.train.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.train.lr)
    return torch.optim.SGD(groups, lr=cfg.train.lr, momentum=cfg.train.momentum, nesterov=True)


def lr_factor(iteration: int, total: int, warmup: int, cfg: Config) -> float:
    """Learning-rate multiplier: linear warmup, then poly or cosine decay to the end."""
    tcfg = cfg.train
    if iteration < warmup:
        return tcfg.warmup_start + (1.0 - tcfg.warmup_start) * iteration / warmup
    progress = min(1.0, (iteration - warmup) / max(1, total - warmup))
    if tcfg.schedule == "poly":
        return (1.0 - progress) ** tcfg.poly_power
    return tcfg.min_lr_ratio + (1.0 - tcfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def first_timed_epoch(freeze_encoder_epochs: int) -> int:
    """The first epoch whose time ``train.fit_epochs_to_time`` may trust.

    The first epoch pays for start-up (cuDNN autotuning, caches), and so does the first
    epoch after a frozen encoder is released: its backward pass runs kernels not tuned
    yet. On the H200 both took 14 s against 3 s for the ones after (issue 16's long runs),
    and a schedule fitted to them was planned for 24 epochs, then stretched to 111 as the
    times fell, the learning rate rising again mid-run."""
    return freeze_encoder_epochs + 2 if freeze_encoder_epochs > 0 else 2


def epochs_for_time(planned: int, done: int, elapsed_s: float, epoch_s: float, budget_s: float) -> int:
    """The number of epochs that fits ``budget_s``: ``done`` epochs took ``elapsed_s``,
    each further one ``epoch_s``; never more than ``planned`` nor fewer than ``done``.
    A 3 % margin absorbs jitter, so the last epoch ends inside the budget."""
    more = int(max(0.0, budget_s - elapsed_s) / max(epoch_s, 1e-6) * 0.97)
    return max(done, min(planned, done + more))


class StartingPointDecay:
    """Decoupled L2-SP (Li et al., ICML 2018): ``train.l2sp_decay``.

    After every optimizer step each weight moves back toward its value at the start of the
    run by ``lr * decay`` of the distance, as AdamW's decoupled weight decay pulls toward
    zero. A fine-tune on a handful of frames then keeps what the starting checkpoint knew
    about everything those frames do not show, instead of drifting wherever they lead.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.start = {id(p): p.detach().clone() for p in model.parameters()}

    @torch.no_grad()
    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        """Pull every parameter of ``optimizer`` toward its start, at its group's rate."""
        for group in optimizer.param_groups:
            rate = group["lr"] * self.decay
            for p in group["params"]:
                start = self.start.get(id(p))
                if start is not None:
                    p.sub_(rate * (p - start))

    def distance(self, model: nn.Module) -> float:
        """Euclidean distance of ``model``'s parameters from the start (for the summary)."""
        total = sum(float(((p.detach() - self.start[id(p)]) ** 2).sum()) for p in model.parameters())
        return math.sqrt(total)
