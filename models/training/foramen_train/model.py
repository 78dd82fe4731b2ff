"""PP-LiteSeg-like real-time segmentation network, written from the paper.

Peng et al. 2022, "PP-LiteSeg: A Superior Real-Time Semantic Segmentation Model"
(arXiv:2204.02681). The network has three parts:

* an STDC-like encoder (Fan et al. 2021, "Rethinking BiSeNet For Real-time Semantic
  Segmentation"): a two-conv stem followed by three stages of Short-Term Dense
  Concatenate modules whose outputs at strides 8, 16 and 32 feed the decoder;
* a Simple Pyramid Pooling Module (SPPM) on the stride-32 features as cheap global
  context: average pooling to 1x1, 2x2 and 4x4 bins, a 1x1 conv per branch, bilinear
  upsampling back, a sum and a 3x3 conv;
* a flexible lightweight decoder: Unified Attention Fusion Modules (spatial-attention
  variant) fuse the upsampled deeper feature with the encoder feature at strides 16 and
  8, the channel count shrinking as the resolution grows; a segmentation head on the
  stride-8 feature, whose logits are upsampled (bilinear) to the input size.

Every width is configurable, so the same code gives a tiny variant that trains on a CPU.
The forward pass returns raw logits ``(N, C, H, W)``. Optional auxiliary heads on the
stride-16 and stride-32 decoder features provide deep supervision during training; they
are not part of the inference graph (:meth:`PPLiteSeg.forward`).

``decoder = "fpn"`` swaps SPPM + UAFMs for a bare feature pyramid (Lin et al. 2017,
"Feature Pyramid Networks for Object Detection"): 1x1 lateral convs to one width, a
top-down path of upsample-and-add, a 3x3 conv per level; the head reads the stride-8
level. It is the head of issue 16's quick probe, kept so the two decoders can be compared
on the same encoder and recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import encoders

DECODERS = ("ppliteseg", "fpn")
"""The decoders ``model.decoder`` may name."""


@dataclass
class ModelConfig:
    """Architecture hyper-parameters (the ``[model]`` section of a training config).

    Attributes:
        num_classes: number of output classes (taken from the dataset, not the config).
        width: network input width in pixels.
        height: network input height in pixels.
        base_channels: encoder width; the stage outputs have ``base/2, base, 4*base,
            8*base, 16*base`` channels (64 gives STDC1's widths). Must be even.
        stage_blocks: STDC modules per encoder stage at strides 8, 16 and 32 (the first of
            each stage downsamples); STDC1 uses ``[2, 2, 2]``.
        decoder_channels: UAFM output channels at strides 8, 16 and 32 (increasing, as in
            the paper's flexible decoder; PP-LiteSeg-T uses ``[32, 64, 128]``).
        sppm_channels: SPPM inner and output channels (128 in the paper).
        head_channels: channels of the 3x3 conv in the segmentation head.
        detail_channels: when > 0, one more UAFM fuses the stride-8 decoder feature with
            the encoder's stride-4 stem feature into this many channels and the head runs
            at stride 4. Thin structures (the few-pixel 'void' seams between vocalfolds
            regions) vanish at stride 8; this costs little at stride 4 with few channels.
        aux_heads: build auxiliary heads on the stride-16/32 decoder features for deep
            supervision during training.
        encoder: ``"stdc-scratch"`` (the STDC-like encoder above, ``base_channels`` and
            ``stage_blocks`` apply) or an ImageNet-pretrained ``"efficientnet-lite0/1/2"``
            (see :mod:`foramen_train.encoders`; those two keys are then unused).
        decoder: ``"ppliteseg"`` (SPPM + UAFMs, ``decoder_channels`` and
            ``sppm_channels`` apply) or ``"fpn"`` (a bare feature pyramid of
            ``fpn_channels`` at every level; those two keys are then unused).
        fpn_channels: the feature pyramid's width (``decoder = "fpn"`` only).
        head_dropout: channel dropout (``Dropout2d``) between the heads' 3x3 conv and
            their classifier in training, as mmseg's decode heads have (0.1 there); no
            weights, so checkpoints and exports are the same with or without it.
    """

    num_classes: int
    width: int
    height: int
    base_channels: int = 64
    stage_blocks: list[int] = field(default_factory=lambda: [2, 2, 2])
    decoder_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    sppm_channels: int = 128
    head_channels: int = 64
    detail_channels: int = 0
    aux_heads: bool = True
    encoder: str = encoders.STDC
    decoder: str = "ppliteseg"
    fpn_channels: int = 64
    head_dropout: float = 0.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending ``model.*`` field."""
        try:
            encoders.check_name(self.encoder)
        except encoders.EncoderError as err:
            raise ValueError(str(err)) from err
        if self.num_classes < 1:
            raise ValueError(f"model: need at least one class, got {self.num_classes}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 32 or value % 32 != 0:
                raise ValueError(f"model.{name}: must be a positive multiple of 32, got {value}")
        if self.base_channels < 2 or self.base_channels % 2 != 0:
            raise ValueError(f"model.base_channels: must be an even number >= 2, got {self.base_channels}")
        if len(self.stage_blocks) != 3 or any(b < 1 for b in self.stage_blocks):
            raise ValueError(f"model.stage_blocks: need 3 counts >= 1, got {self.stage_blocks}")
        if len(self.decoder_channels) != 3 or any(c < 1 for c in self.decoder_channels):
            raise ValueError(f"model.decoder_channels: need 3 positive counts, got {self.decoder_channels}")
        if self.decoder not in DECODERS:
            raise ValueError(f"model.decoder: {self.decoder!r} is not one of {', '.join(DECODERS)}")
        for name in ("sppm_channels", "head_channels", "fpn_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name}: must be positive, got {getattr(self, name)}")
        if self.detail_channels < 0:
            raise ValueError(f"model.detail_channels: must be >= 0 (0 = head at stride 8), got {self.detail_channels}")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"model.head_dropout: must be in [0, 1), got {self.head_dropout}")


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + optional ReLU, 'same' padding."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, relu: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class STDCModule(nn.Module):
    """Short-Term Dense Concatenate module with four blocks (STDC paper, Fig. 3).

    Block 1 is a 1x1 conv to ``cout/2`` channels, blocks 2-4 are 3x3 convs to ``cout/4``,
    ``cout/8`` and ``cout/8``; the four outputs are concatenated (``cout`` channels). With
    stride 2, a 3x3 depthwise stride-2 conv downsamples between blocks 1 and 2 and block
    1's output is average-pooled (3x3, stride 2) before the concatenation.
    """

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cout % 8 != 0:
            raise ValueError(f"STDC module needs channels divisible by 8, got {cout}")
        half, quarter, eighth = cout // 2, cout // 4, cout // 8
        self.block1 = ConvBNReLU(cin, half, k=1)
        self.down = ConvBNReLU(half, half, k=3, stride=2, groups=half, relu=False) if stride == 2 else None
        self.skip = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else None
        self.block2 = ConvBNReLU(half, quarter)
        self.block3 = ConvBNReLU(quarter, eighth)
        self.block4 = ConvBNReLU(eighth, eighth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the outputs of the four blocks."""
        out1 = self.block1(x)
        out2 = self.block2(self.down(out1) if self.down is not None else out1)
        out3 = self.block3(out2)
        out4 = self.block4(out3)
        if self.skip is not None:
            out1 = self.skip(out1)
        return torch.cat([out1, out2, out3, out4], dim=1)


class STDCEncoder(nn.Module):
    """STDC-like encoder returning the stride-8, 16 and 32 features."""

    def __init__(self, base: int, stage_blocks: list[int]):
        super().__init__()
        self.stem = nn.Sequential(ConvBNReLU(3, base // 2, stride=2), ConvBNReLU(base // 2, base, stride=2))
        widths = [4 * base, 8 * base, 16 * base]
        self.stem_channels = base
        self.out_channels = widths
        stages = []
        cin = base
        for cout, blocks in zip(widths, stage_blocks):
            modules = [STDCModule(cin, cout, stride=2)]
            modules += [STDCModule(cout, cout, stride=1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*modules))
            cin = cout
        self.stages = nn.ModuleList(stages)

    def stem_modules(self) -> list[nn.Module]:
        """The layers that compute the stride-4 feature (``train.freeze_stem``)."""
        return [self.stem]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``[f8, f16, f32]``."""
        return self.forward_with_stem(x)[1]

    def forward_with_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the stride-4 stem feature and ``[f8, f16, f32]``."""
        x = self.stem(x)
        stem = x
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return stem, feats


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Average-pool ``x`` to ``bins x bins`` cells with PyTorch's adaptive-pooling bounds.

    Cell ``i`` of an axis of length ``n`` covers ``[floor(i*n/bins), ceil((i+1)*n/bins))``,
    exactly as ``F.adaptive_avg_pool2d``. When the feature size divides evenly this is a
    plain ``avg_pool2d`` (ONNX ``AveragePool``); otherwise the cells are averaged with two
    constant matrices (ONNX ``MatMul``), which exports to plain ops for any fixed input
    size, unlike adaptive pooling with non-divisible sizes.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % bins == 0 and w % bins == 0:
        return F.avg_pool2d(x, kernel_size=(h // bins, w // bins))
    rows = _pooling_matrix(h, bins, x.dtype, x.device)  # (bins, h)
    cols = _pooling_matrix(w, bins, x.dtype, x.device)  # (bins, w)
    return torch.matmul(torch.matmul(rows, x), cols.t())


def _pooling_matrix(n: int, bins: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Row ``i`` averages the input positions of adaptive-pooling cell ``i``."""
    matrix = torch.zeros(bins, n, dtype=dtype, device=device)
    for i in range(bins):
        start = (i * n) // bins
        end = -((-(i + 1) * n) // bins)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class SPPM(nn.Module):
    """Simple Pyramid Pooling Module: pool to 1/2/4 bins, 1x1 conv, upsample, sum, 3x3 conv."""

    bins = (1, 2, 4)

    def __init__(self, cin: int, cinner: int, cout: int):
        super().__init__()
        self.branches = nn.ModuleList(ConvBNReLU(cin, cinner, k=1) for _ in self.bins)
        self.fuse = ConvBNReLU(cinner, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global context of the stride-32 feature, at its resolution."""
        size = x.shape[-2:]
        out = None
        for bins, branch in zip(self.bins, self.branches):
            y = F.interpolate(branch(adaptive_avg_pool(x, bins)), size=size, mode="bilinear", align_corners=False)
            out = y if out is None else out + y
        return self.fuse(out)


class UAFM(nn.Module):
    """Unified Attention Fusion Module, spatial-attention variant (paper Sec. 3.3).

    The deeper feature ``high`` is upsampled to the size of the encoder feature ``low``
    (first projected to the same channels). The spatial attention weight is
    ``alpha = sigmoid(conv(concat[mean_c(up), max_c(up), mean_c(low), max_c(low)]))``
    and the fused feature ``up * alpha + low * (1 - alpha)`` goes through a 3x3 conv.
    """

    def __init__(self, low_channels: int, high_channels: int, cout: int):
        super().__init__()
        self.project = ConvBNReLU(low_channels, high_channels)
        self.attention = nn.Sequential(
            ConvBNReLU(4, 2),
            ConvBNReLU(2, 1, relu=False),
        )
        self.out = ConvBNReLU(high_channels, cout)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Fuse ``high`` (deeper, smaller) into ``low`` (encoder feature)."""
        low = self.project(low)
        up = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        stats = torch.cat(
            [
                up.mean(dim=1, keepdim=True),
                up.amax(dim=1, keepdim=True),
                low.mean(dim=1, keepdim=True),
                low.amax(dim=1, keepdim=True),
            ],
            dim=1,
        )
        alpha = torch.sigmoid(self.attention(stats))
        return self.out(up * alpha + low * (1.0 - alpha))


class FPN(nn.Module):
    """Bare feature pyramid on the stride 8/16/32 features, one width at every level.

    Each level is a 1x1 lateral projection plus the upsampled level above it, smoothed
    by a 3x3 conv (the smoothing removes the upsampling's aliasing, as in the paper).
    """

    def __init__(self, in_channels: tuple[int, int, int], cout: int):
        super().__init__()
        self.lateral = nn.ModuleList([ConvBNReLU(c, cout, k=1) for c in in_channels])
        self.smooth = nn.ModuleList([ConvBNReLU(cout, cout) for _ in in_channels])

    def forward(
        self, f8: torch.Tensor, f16: torch.Tensor, f32: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The smoothed levels at strides 8, 16 and 32."""
        p32 = self.lateral[2](f32)
        p16 = self.lateral[1](f16) + F.interpolate(p32, size=f16.shape[-2:], mode="bilinear", align_corners=False)
        p8 = self.lateral[0](f8) + F.interpolate(p16, size=f8.shape[-2:], mode="bilinear", align_corners=False)
        return self.smooth[0](p8), self.smooth[1](p16), self.smooth[2](p32)


class SegHead(nn.Sequential):
    """3x3 ConvBNReLU followed by a 1x1 conv to class logits, with optional channel
    dropout between them in training (kept out of the sequence, so the weights' keys
    are the same with or without it)."""

    def __init__(self, cin: int, cmid: int, num_classes: int, dropout: float = 0.0):
        super().__init__(ConvBNReLU(cin, cmid), nn.Conv2d(cmid, num_classes, 1))
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits; dropout between the features and the classifier."""
        return self[1](self.dropout(self[0](x)))


class PPLiteSeg(nn.Module):
    """PP-LiteSeg-like network; ``forward`` returns logits at the input size.

    ``pretrained`` loads a pretrained encoder's ImageNet weights (training from scratch
    of the decoder); a checkpoint's weights replace them anyway, so loading one needs
    no pretrained weights.
    """

    def __init__(self, cfg: ModelConfig, pretrained: bool = False):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.encoder: STDCEncoder | encoders.LiteEncoder
        if cfg.encoder == encoders.STDC:
            self.encoder = STDCEncoder(cfg.base_channels, cfg.stage_blocks)
        else:
            self.encoder = encoders.LiteEncoder(cfg.encoder, cfg.width, cfg.height, pretrained)
        c8, c16, c32 = self.encoder.out_channels
        # The PP-LiteSeg modules keep their attribute names (sppm, fuse16, fuse8) so the
        # bundled checkpoints' keys stay valid; the FPN lives beside them as `fpn`.
        self.sppm: SPPM | None = None
        self.fuse16: UAFM | None = None
        self.fuse8: UAFM | None = None
        self.fpn: FPN | None = None
        if cfg.decoder == "fpn":
            d8 = d16 = d32 = cfg.fpn_channels
            self.fpn = FPN((c8, c16, c32), cfg.fpn_channels)
        else:
            d8, d16, d32 = cfg.decoder_channels
            self.sppm = SPPM(c32, cfg.sppm_channels, d32)
            self.fuse16 = UAFM(c16, d32, d16)
            self.fuse8 = UAFM(c8, d16, d8)
        if cfg.detail_channels > 0:
            self.fuse4: UAFM | None = UAFM(self.encoder.stem_channels, d8, cfg.detail_channels)
            self.head = SegHead(cfg.detail_channels, cfg.head_channels, cfg.num_classes, cfg.head_dropout)
        else:
            self.fuse4 = None
            self.head = SegHead(d8, cfg.head_channels, cfg.num_classes, cfg.head_dropout)
        if cfg.aux_heads:
            self.aux = nn.ModuleList(
                [
                    SegHead(d16, cfg.head_channels, cfg.num_classes, cfg.head_dropout),
                    SegHead(d32, cfg.head_channels, cfg.num_classes, cfg.head_dropout),
                ]
            )
        else:
            self.aux = nn.ModuleList()

    def _decode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The head's input (stride 8, or 4 with ``detail_channels``) and ``d16``, ``d32``."""
        f4, (f8, f16, f32) = self.encoder.forward_with_stem(x)
        if self.fpn is not None:
            d8, d16, d32 = self.fpn(f8, f16, f32)
        else:
            assert self.sppm is not None and self.fuse16 is not None and self.fuse8 is not None
            d32 = self.sppm(f32)
            d16 = self.fuse16(f16, d32)
            d8 = self.fuse8(f8, d16)
        top = self.fuse4(f4, d8) if self.fuse4 is not None else d8
        return top, d16, d32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw class logits ``(N, C, H, W)`` at the input resolution."""
        top, _, _ = self._decode(x)
        return F.interpolate(self.head(top), size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Main logits plus the auxiliary heads' logits (all at the input size)."""
        top, d16, d32 = self._decode(x)
        size = x.shape[-2:]
        main = F.interpolate(self.head(top), size=size, mode="bilinear", align_corners=False)
        aux = [
            F.interpolate(head(feat), size=size, mode="bilinear", align_corners=False)
            for head, feat in zip(self.aux, (d16, d32))
        ]
        return main, aux


def count_parameters(model: PPLiteSeg) -> int:
    """Parameters of the inference graph (auxiliary heads excluded)."""
    aux = {id(p) for p in model.aux.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in aux)


def estimate_flops(model: nn.Module, width: int, height: int) -> int:
    """FLOPs (= 2 x multiply-adds) of one ``forward`` at ``height x width``, batch 1.

    Counts Conv2d and Linear layers only (the bulk of the cost); normalisation,
    activations, pooling and resizing are ignored.
    """
    macs = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return 2 * macs
