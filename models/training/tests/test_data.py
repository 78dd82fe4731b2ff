"""List parsing, dataset.toml, decoding checks and augmentation alignment."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from foramen_train.data import (MEAN, STD, AugmentConfig, DataError, SegmentationDataset, augment_pair,
                                load_dataset_spec, read_list)

from conftest import CLASSES


def test_read_list(tiny_dataset):
    pairs = read_list(tiny_dataset, "train.txt")
    assert len(pairs) == 8 and all(i.is_file() and m.is_file() for i, m in pairs)


def test_malformed_line_names_file_and_line(tiny_dataset):
    lines = (tiny_dataset / "train.txt").read_text().splitlines()
    (tiny_dataset / "bad.txt").write_text("\n".join([lines[0], "", lines[1].split()[0]]) + "\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: expected 'image_path mask_path'"):
        read_list(tiny_dataset, "bad.txt")


def test_missing_file_names_file_and_line(tiny_dataset):
    lines = (tiny_dataset / "train.txt").read_text().splitlines()
    root = tiny_dataset
    (root / "broken.txt").write_text(f"# comment\n{lines[0]}\nimages/nope.png {lines[1].split()[1]}\n")
    with pytest.raises(DataError, match=r"broken\.txt:3: image file not found: .*nope\.png"):
        read_list(root, "broken.txt")
    with pytest.raises(DataError, match=r"absent\.txt: list file not found"):
        read_list(root, "absent.txt")


def test_dataset_toml(tiny_dataset):
    spec = load_dataset_spec(tiny_dataset)
    assert spec.name == "tiny-synth" and spec.ignore_index == 255 and spec.description == "tiny synthetic set"
    assert [(c.index, c.name, c.color) for c in spec.classes] == [(i, n, c) for i, (n, c) in enumerate(CLASSES)]
    with pytest.raises(DataError, match="differ from the config"):
        load_dataset_spec(tiny_dataset, ["background", "bone"])


@pytest.mark.parametrize("body,field", [
    ('[[classes]]\nindex = 0\nname = "a"\ncolor = [0, 0]\n', r"classes\[0\]\.color"),
    ('[[classes]]\nindex = 1\nname = "a"\ncolor = [0, 0, 0]\n', "indices must be 0..0"),
    ('[[classes]]\nindex = 0\nname = 3\ncolor = [0, 0, 0]\n', r"classes\[0\]\.name"),
    ('ignore_index = 1\n[[classes]]\nindex = 0\nname = "a"\ncolor = [0, 0, 0]\n[[classes]]\nindex = 1\nname = "b"\n'
     'color = [1, 1, 1]\n', "ignore_index"),
    ("name = [\n", "not valid TOML"),
])
def test_dataset_toml_errors_name_field(tmp_path, body, field):
    (tmp_path / "dataset.toml").write_text(body)
    with pytest.raises(DataError, match=rf"dataset\.toml: .*{field}"):
        load_dataset_spec(tmp_path)


def test_classes_from_config_use_default_palette(tmp_path):
    spec = load_dataset_spec(tmp_path, ["void", "tissue"])
    assert spec.class_names == ["void", "tissue"] and spec.classes[0].color == (0, 0, 0)
    with pytest.raises(DataError, match="no dataset.toml"):
        load_dataset_spec(tmp_path)


def test_mask_with_unknown_label_is_named(tiny_dataset, tmp_path):
    spec = load_dataset_spec(tiny_dataset)
    image, mask = read_list(tiny_dataset, "train.txt")[0]
    bad = np.array(Image.open(mask))
    bad[5, 5] = 9
    Image.fromarray(bad).save(tmp_path / "bad.png")
    with pytest.raises(DataError, match=r"bad\.png: mask values \[9\]"):
        SegmentationDataset([(image, tmp_path / "bad.png")], spec, 64, 64)


def test_dataset_items_shapes_and_normalisation(tiny_dataset):
    spec = load_dataset_spec(tiny_dataset)
    ds = SegmentationDataset(read_list(tiny_dataset, "val.txt"), spec, width=96, height=32)
    assert ds.cached
    image, mask = ds[0]
    assert image.shape == (3, 32, 96) and image.dtype == torch.float32
    assert mask.shape == (32, 96) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) <= {0, 1, 2, 3, 255}
    raw = np.asarray(Image.open(ds.pairs[0][0]).resize((96, 32), Image.Resampling.BILINEAR), dtype=np.float32)
    expected = (raw[10, 20] / 255 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(image[:, 10, 20].numpy(), expected, atol=1e-5)


def test_augmentation_is_reproducible_per_epoch(tiny_dataset):
    spec = load_dataset_spec(tiny_dataset)
    pairs = read_list(tiny_dataset, "train.txt")
    a = SegmentationDataset(pairs, spec, 64, 64, augment=AugmentConfig(), seed=3)
    b = SegmentationDataset(pairs, spec, 64, 64, augment=AugmentConfig(), seed=3, cache_max_mb=0)
    assert not b.cached
    assert torch.equal(a[2][0], b[2][0]) and torch.equal(a[2][1], b[2][1])
    a.set_epoch(1)
    assert not torch.equal(a[2][0], b[2][0])


def colour_coded(width=160, height=96):
    """Large class regions painted with their class colour (class 0 black)."""
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[(xx > 20) & (xx < 80) & (yy > 10)] = 1
    mask[((xx - 115) ** 2 + (yy - 45) ** 2) < 30**2] = 2
    mask[(yy > 70) & (xx > 90)] = 3
    palette = np.array([c for _, c in CLASSES], dtype=np.uint8)
    return palette[mask], mask


@pytest.mark.parametrize("seed", range(6))
def test_geometric_augmentation_keeps_image_and_mask_aligned(seed):
    image, mask = colour_coded()
    cfg = AugmentConfig(hflip=0.5, vflip=0.5, rotate_prob=1.0, rotate_deg=90, scale_min=0.7, scale_max=1.6,
                        brightness=0, contrast=0, saturation=0, gamma=0, hue=0, blur_prob=0)
    out_image, out_mask = augment_pair(image, mask, 128, 64, cfg, np.random.default_rng(seed))
    assert out_image.shape == (64, 128, 3) and out_mask.shape == (64, 128)
    assert 255 not in out_mask  # areas entering the frame are class 0, not ignore
    palette = np.array([c for _, c in CLASSES], dtype=np.float32)
    distance = ((out_image[:, :, None, :].astype(np.float32) - palette[None, None]) ** 2).sum(-1)
    agreement = (distance.argmin(-1) == out_mask).mean()
    assert agreement > 0.97, agreement


def test_colour_jitter_changes_only_the_image():
    image, mask = colour_coded()
    geometry_off = dict(hflip=0, vflip=0, rotate_prob=0, scale_min=1, scale_max=1)
    colour_off = dict(brightness=0, contrast=0, saturation=0, gamma=0, hue=0, blur_prob=0)
    plain, plain_mask = augment_pair(image, mask, 160, 96, AugmentConfig(**geometry_off, **colour_off),
                                     np.random.default_rng(0))
    jittered, jittered_mask = augment_pair(image, mask, 160, 96, AugmentConfig(**geometry_off, blur_prob=1),
                                           np.random.default_rng(0))
    np.testing.assert_array_equal(plain, image)
    np.testing.assert_array_equal(plain_mask, mask)
    np.testing.assert_array_equal(jittered_mask, mask)
    assert np.abs(plain.astype(int) - jittered.astype(int)).mean() > 1


def test_invalid_augment_names_field():
    with pytest.raises(ValueError, match="data.augment.hflip"):
        AugmentConfig(hflip=2).validate()


def test_spec_round_trip(tiny_dataset):
    spec = load_dataset_spec(tiny_dataset)
    assert type(spec).from_dict(spec.to_dict()) == spec
