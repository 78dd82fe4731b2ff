"""Copy-paste augmentation (``data.augment.paste_classes``): what moves, where, and what
does not."""

import numpy as np
import pytest
import torch

from foramen_train.augment import AugmentConfig
from foramen_train.data import SegmentationDataset
from foramen_train.dataset_spec import DataError, load_dataset_spec
from foramen_train.frames import read_list
from foramen_train.paste import MIN_OBJECT_PX, ObjectPaster

from conftest import GEOMETRY_OFF, PHOTOMETRIC_OFF

H, W = 60, 80


def frames():
    """Frame 0: a class-2 bar (colour (200, 40, 40)) on grey class 1; frame 1: plain
    class 1 with a class-3 patch in its lower right (the anchor); frame 2: nothing to
    paste."""
    grey = np.full((H, W, 3), 90, np.uint8)
    donor_image, donor_mask = grey.copy(), np.ones((H, W), np.uint8)
    donor_image[10:20, 5:45] = (200, 40, 40)
    donor_mask[10:20, 5:45] = 2
    target_image, target_mask = grey.copy() + 20, np.ones((H, W), np.uint8)
    target_mask[40:55, 55:75] = 3
    return [(donor_image, donor_mask), (target_image, target_mask), (grey.copy(), np.ones((H, W), np.uint8))]


def paster(**fields):
    data = frames()
    cfg = AugmentConfig(paste_classes=[2], paste_prob=1.0, paste_scale_min=1.0, paste_scale_max=1.0, **fields)
    return ObjectPaster(len(data), data.__getitem__, cfg), data


def test_donors_are_the_frames_showing_the_class():
    p, _ = paster()
    assert p.donors == [0]


def test_pasted_pixels_carry_the_donor_class_and_colour():
    p, data = paster()
    image, mask = data[1]
    for seed in range(8):
        out, out_mask = p(image, mask, np.random.default_rng(seed), skip=1)
        pasted = out_mask == 2
        # The whole 10 x 40 bar, or what of it stays in the frame; nothing else relabelled.
        assert 0 < pasted.sum() <= 400
        np.testing.assert_array_equal(out_mask[~pasted], mask[~pasted])
        # Away from the softened edge the image is the donor's colour; far away, untouched.
        core = pasted & np.roll(pasted, 2, 0) & np.roll(pasted, -2, 0) & np.roll(pasted, 2, 1) & np.roll(pasted, -2, 1)
        assert (np.abs(out[core].astype(int) - (200, 40, 40)) <= 1).all()
        near = np.zeros_like(pasted)
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                near |= np.roll(np.roll(pasted, dy, 0), dx, 1)
        np.testing.assert_array_equal(out[~near], image[~near])
    assert image.max() == 110 and (mask != 2).all()  # the inputs are not modified


def test_anchored_paste_centres_the_object_on_the_anchor_class():
    p, data = paster(paste_anchor_classes=[3])
    image, mask = data[1]
    for seed in range(8):
        _, out_mask = p(image, mask, np.random.default_rng(seed), skip=1)
        ys, xs = np.nonzero(out_mask == 2)
        # The bar's centre (what of it is in the frame) sits near the anchor patch.
        assert 40 - 6 <= ys.mean() < 55 + 6 and xs.mean() >= 55 - 20


def test_scale_and_probability():
    data = frames()
    cfg = AugmentConfig(paste_classes=[2], paste_prob=1.0, paste_scale_min=0.5, paste_scale_max=0.5)
    p = ObjectPaster(len(data), data.__getitem__, cfg)
    sizes = [(p(*data[2], np.random.default_rng(s))[1] == 2).sum() for s in range(6)]
    assert all(0 < n <= 100 for n in sizes) and max(sizes) > 60  # 5 x 20 when it lies inside
    never = ObjectPaster(len(data), data.__getitem__, AugmentConfig(paste_classes=[2], paste_prob=0.0))
    out = never(*data[2], np.random.default_rng(0))
    assert out[0] is data[2][0] and out[1] is data[2][1]


def test_no_donor_is_an_error_naming_the_classes():
    data = frames()
    data[0][1][data[0][1] == 2] = 1
    with pytest.raises(DataError, match=r"paste_classes: no frame of the training list \(first frame a.png\)"):
        ObjectPaster(len(data), data.__getitem__, AugmentConfig(paste_classes=[2]), ["a.png"])
    tiny = frames()
    tiny[0][1][:] = 1
    tiny[0][1][0, : MIN_OBJECT_PX - 1] = 2
    with pytest.raises(DataError, match=f"at least {MIN_OBJECT_PX} pixels"):
        ObjectPaster(len(tiny), tiny.__getitem__, AugmentConfig(paste_classes=[2]))


def test_dataset_pastes_with_its_own_stream(tiny_dataset):
    spec = load_dataset_spec(tiny_dataset)
    pairs = read_list(tiny_dataset, "train.txt")
    off = dict(**GEOMETRY_OFF, **PHOTOMETRIC_OFF)
    plain = SegmentationDataset(pairs, spec, 64, 64, augment=AugmentConfig(**off), seed=2)
    with_paste = SegmentationDataset(
        pairs, spec, 64, 64, augment=AugmentConfig(**off, paste_classes=[1], paste_prob=1.0), seed=2
    )
    assert with_paste._paster is not None and len(with_paste._paster.donors) > 0
    changed = [not torch.equal(plain[i][1], with_paste[i][1]) for i in range(len(pairs))]
    assert any(changed)
    again = SegmentationDataset(
        pairs, spec, 64, 64, augment=AugmentConfig(**off, paste_classes=[1], paste_prob=1.0), seed=2
    )
    for i in range(len(pairs)):  # reproducible: (seed, epoch, index) decides
        assert torch.equal(with_paste[i][0], again[i][0])
    # Off: no paster, and the prob alone changes nothing.
    unlisted = SegmentationDataset(pairs, spec, 64, 64, augment=AugmentConfig(**off, paste_prob=1.0), seed=2)
    assert unlisted._paster is None
    assert all(torch.equal(plain[i][0], unlisted[i][0]) for i in range(len(pairs)))


def test_paste_fields_are_checked(tiny_dataset):
    spec = load_dataset_spec(tiny_dataset)
    pairs = read_list(tiny_dataset, "val.txt")
    with pytest.raises(DataError, match=r"data.augment.paste_classes: \[4\] are not class indices"):
        SegmentationDataset(pairs, spec, 64, 64, augment=AugmentConfig(paste_classes=[1, 4]))
    with pytest.raises(DataError, match=r"data.augment.paste_anchor_classes: \[9\] are not class indices"):
        SegmentationDataset(pairs, spec, 64, 64, augment=AugmentConfig(paste_classes=[1], paste_anchor_classes=[9]))
    for field, value in [("paste_prob", 1.2), ("paste_classes", [256]), ("paste_scale_min", 0.0)]:
        with pytest.raises(ValueError, match=f"data.augment.{field}"):
            AugmentConfig(**{field: value}).validate()
    with pytest.raises(ValueError, match="paste_scale_max"):
        AugmentConfig(paste_scale_min=1.2, paste_scale_max=1.0).validate()


def test_paste_is_refused_on_the_device():
    from foramen_train.config import ConfigError, config_from_dict
    from foramen_train.device_augment import DeviceAugmenter

    doc = {
        "data": {"root": "x", "augment_on": "device", "augment": {"paste_classes": [6]}},
        "model": {"width": 64, "height": 64},
    }
    with pytest.raises(ConfigError, match="paste_classes"):
        config_from_dict(doc, "t.toml")
    images, masks = torch.zeros((1, 3, 8, 8), dtype=torch.uint8), torch.zeros((1, 8, 8), dtype=torch.uint8)
    with pytest.raises(ValueError, match="paste_classes"):
        DeviceAugmenter(images, masks, 8, 8, AugmentConfig(paste_classes=[1]))
