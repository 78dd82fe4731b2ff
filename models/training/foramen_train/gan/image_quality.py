"""Image quality of a generator on the validation label maps: KID (Binkowski et al., ICLR
2018) on features of a segmentation encoder trained here, L1 to the real frames and the
segmentation model's mIoU on the generated images, next to a class-colour painting."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from .errors import GanError
from .sampling import Generator
from .training import load_pairs


def kid(
    x: np.ndarray, y: np.ndarray, subsets: int = 50, subset_size: int | None = None, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al., ICLR 2018) between feature sets.

    The unbiased MMD^2 with the cubic polynomial kernel ``(x.y / d + 1)^3``, averaged over
    ``subsets`` random subsets of ``subset_size`` rows of each set (all rows of the
    smaller set by default); returns (mean, standard deviation) over the subsets.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise GanError(f"kid: need (n, d) and (m, d) features, got {x.shape} and {y.shape}")
    m = subset_size or min(len(x), len(y))
    if m < 2 or m > min(len(x), len(y)):
        raise GanError(f"kid: subset size {m} needs 2 <= size <= {min(len(x), len(y))}")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
        values.append(
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        )
    return float(np.mean(values)), float(np.std(values))


class SegFeatures:
    """Image features from a segmentation checkpoint trained here (``best.pt``): the
    globally average- and max-pooled outputs of the encoder's last two stages.

    KID is usually computed on Inception features; no such network can be downloaded
    here, so the features come from the recipe's own encoder, trained on the real
    training frames of the same data set.
    """

    def __init__(self, checkpoint: Path):
        from ..export import load_checkpoint

        try:
            self.model, _ = load_checkpoint(Path(checkpoint))
        except (FileNotFoundError, RuntimeError) as err:
            raise GanError(f"{checkpoint}: {err}") from err
        self.width, self.height = self.model.cfg.width, self.model.cfg.height

    @torch.no_grad()
    def __call__(self, images: np.ndarray, batch: int = 16) -> np.ndarray:
        """The segmentation model's class maps of `images` (N x H x W x 3, uint8)."""
        from ..encoders import normalization
        from ..frames import normalize

        norm = normalization(self.model.cfg.encoder)
        feats = []
        for start in range(0, len(images), batch):
            x = torch.from_numpy(
                np.stack(
                    [
                        normalize(
                            np.asarray(
                                Image.fromarray(im).resize((self.width, self.height), Image.Resampling.BILINEAR)
                            ),
                            norm,
                        )
                        for im in images[start : start + batch]
                    ]
                )
            )
            stages = self.model.encoder(x)[-2:]
            feats.append(torch.cat([torch.cat([s.mean((2, 3)), s.amax((2, 3))], 1) for s in stages], 1).numpy())
        return np.concatenate(feats)


def class_mean_painting(
    masks: list[np.ndarray], train_pairs: list[tuple[np.ndarray, np.ndarray]], num_classes: int, blur: float = 2.0
) -> list[np.ndarray]:
    """The trivial label-to-image baseline: each class painted in its mean training colour, blurred."""
    sums, counts = np.zeros((num_classes, 3)), np.zeros(num_classes)
    for image, mask in train_pairs:
        valid = mask < num_classes
        np.add.at(sums, mask[valid], image[valid].astype(np.float64))
        counts += np.bincount(mask[valid], minlength=num_classes)[:num_classes]
    colors = np.vstack([sums / np.maximum(counts, 1)[:, None], np.zeros((256 - num_classes, 3))]).astype(np.float32)
    return [np.clip(ndimage.gaussian_filter(colors[m], (blur, blur, 0)), 0, 255).astype(np.uint8) for m in masks]


def seg_miou(
    predict,
    meta: dict[str, Any],
    images: list[np.ndarray],
    masks: list[np.ndarray],
    num_classes: int,
    ignore_index: int,
) -> dict:
    """mIoU of a predictor (see :mod:`foramen_train.evaluate`) on images against label maps."""
    from ..evaluate import preprocess
    from ..metrics import ConfusionMatrix

    matrix = ConfusionMatrix(num_classes, ignore_index)
    for image, mask in zip(images, masks):
        logits = predict(preprocess(image, meta))
        h, w = mask.shape
        logits = F.interpolate(torch.from_numpy(logits), size=(h, w), mode="bilinear", align_corners=False)
        matrix.update(logits.argmax(1)[0], torch.from_numpy(mask.astype(np.int64)))
    return {"miou": matrix.mean_iou(), "iou": [None if math.isnan(v) else float(v) for v in matrix.iou()]}


def quality(
    generator: Generator,
    features: Path,
    data_root: Path,
    val_list: str,
    train_list: str,
    seg_model: Path | None,
    threads: int = 2,
) -> dict[str, Any]:
    """Image-quality numbers of a generator on the validation label maps (see the README)."""
    torch.set_num_threads(threads)
    spec = generator.dataset
    s = generator.cfg.size
    val = load_pairs(data_root, val_list, 0, spec)
    train = load_pairs(data_root, train_list, 0, spec)

    def small(im: np.ndarray, nearest: bool = False) -> np.ndarray:
        return np.asarray(
            Image.fromarray(im).resize((s, s), Image.Resampling.NEAREST if nearest else Image.Resampling.BICUBIC)
        )

    val_masks = [small(m, True) for _, m in val]
    # Every image at the generator's resolution, so that KID compares content, not sharpness.
    real_val = [small(i) for i, _ in val]
    real_train = [small(i) for i, _ in train]
    generated = list(generator.generate(np.stack(val_masks)))
    painted = class_mean_painting(
        val_masks, [(im, small(m, True)) for im, (_, m) in zip(real_train, train)], spec.num_classes
    )
    feat = SegFeatures(features)
    f_val = feat(np.stack(real_val))
    result: dict[str, Any] = {
        "generator": str(generator.path),
        "features": str(features),
        "size": s,
        "val_frames": len(val),
        "train_frames": len(train),
        "kid": {},
    }
    for name, images in (("generated", generated), ("class_mean_painting", painted), ("real_train", real_train)):
        mean, std = kid(feat(np.stack(images)), f_val)
        result["kid"][name] = {"mean": mean, "std": std}
    result["l1_to_real"] = {
        "generated": float(np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(generated, real_val)])),
        "class_mean_painting": float(np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(painted, real_val)])),
    }
    if seg_model is not None:
        from ..evaluate import onnx_predictor

        predict, meta = onnx_predictor(seg_model, threads)
        result["seg_model"] = str(seg_model)
        result["seg_miou"] = {
            name: seg_miou(predict, meta, images, val_masks, spec.num_classes, spec.ignore_index)
            for name, images in (("real", real_val), ("generated", generated), ("class_mean_painting", painted))
        }
    return result
