"""The network a run trains, and what trains it.

The model (ImageNet encoder weights, or ``train.init_from``'s checkpoint), the encoder
parts frozen per epoch, synchronised BatchNorm and DistributedDataParallel under
torchrun, the optimizer and the training and validation losses (:func:`build_network`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import distributed as D
from .config import Config, ConfigError
from .dataset_spec import DatasetSpec
from .init_from import load_initial_weights
from .losses import SegmentationLoss
from .model import ModelConfig, PPLiteSeg, count_parameters, estimate_flops
from .optim import StartingPointDecay, build_optimizer


def build_model(cfg: Config, spec: DatasetSpec, aux: bool) -> PPLiteSeg:
    """The network: from ``train.init_from``'s weights when set, else with the encoder's
    pretrained weights (none for the scratch encoder)."""
    model_cfg = cfg.model.build(spec.num_classes, aux_heads=aux)
    if not cfg.train.init_from:
        return PPLiteSeg(model_cfg, pretrained=True)
    model = PPLiteSeg(model_cfg)
    load_initial_weights(model, Path(cfg.train.init_from), spec)
    return model


def set_encoder_training(model: PPLiteSeg, epoch: int, cfg: Config) -> None:
    """Apply ``train.freeze_encoder_epochs``, ``freeze_stem`` and ``freeze_bn`` for ``epoch`` (after
    ``model.train()``, which would put frozen BatchNorm layers back in training mode)."""
    frozen = epoch <= cfg.train.freeze_encoder_epochs
    for param in model.encoder.parameters():
        param.requires_grad_(not frozen)
    if cfg.train.freeze_stem:
        # Fixed weights and statistics: nothing before the stride-4 feature needs a
        # gradient, so backpropagation stops there (the costly high-resolution layers).
        for module in model.encoder.stem_modules():
            module.eval()
            module.requires_grad_(False)
    if cfg.train.freeze_bn:
        for module in model.encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
                module.requires_grad_(False)


class _TrainForward(nn.Module):
    """The training forward (main and auxiliary logits) as ``forward``, so that
    DistributedDataParallel sees it."""

    def __init__(self, model: PPLiteSeg, aux: bool):
        super().__init__()
        self.model = model
        self.aux = aux

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.aux:
            return self.model.forward_with_aux(x)
        return self.model(x), []


@dataclass
class Network:
    """The model and what trains it (:func:`build_network`)."""

    model: PPLiteSeg
    model_cfg: ModelConfig
    params: int
    flops: int
    step_net: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: SegmentationLoss
    val_loss_fn: SegmentationLoss
    anchor: StartingPointDecay | None = None


def build_network(cfg: Config, spec: DatasetSpec, info: D.DistInfo) -> Network:
    """The model on the training device (synchronised BatchNorm and DDP under torchrun),
    its optimizer and the training and validation losses."""
    device = info.device
    aux = cfg.train.loss.aux_weight > 0
    if info.distributed and cfg.train.freeze_encoder_epochs > 0:
        raise ConfigError(
            f"{cfg.source}: train.freeze_encoder_epochs: not supported under torchrun (DDP needs "
            "the same trainable parameters in every step); use train.encoder_lr_mult"
        )
    model = build_model(cfg, spec, aux)
    model_cfg = model.cfg
    set_encoder_training(model, 1, cfg)  # frozen BatchNorm before DDP records the trainable parameters
    params = count_parameters(model)
    flops = estimate_flops(model, model_cfg.width, model_cfg.height)
    if info.distributed:
        model = D.convert_sync_batchnorm(model, device)
    model.to(device)
    # The data set's ignored classes are no target of the loss either.
    loss_cfg = dataclasses.replace(
        cfg.train.loss,
        ignore_classes=sorted(set(cfg.train.loss.ignore_classes or []) | set(spec.ignored_indices)) or None,
    )
    loss_fn = SegmentationLoss(spec.num_classes, spec.ignore_index, loss_cfg, sync=info.distributed).to(device)
    val_loss_fn = SegmentationLoss(spec.num_classes, spec.ignore_index, loss_cfg).to(device)
    step_net: nn.Module = _TrainForward(model, aux)
    if info.distributed:
        step_net = DistributedDataParallel(
            step_net,
            device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=False,  # BatchNorm statistics are synchronised already
        )
    optimizer = build_optimizer(model, cfg)
    anchor = StartingPointDecay(model, cfg.train.l2sp_decay) if cfg.train.l2sp_decay > 0 else None
    return Network(model, model_cfg, params, flops, step_net, optimizer, loss_fn, val_loss_fn, anchor)
