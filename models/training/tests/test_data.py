"""List parsing, dataset.toml, decoding checks and augmentation alignment."""

import numpy as np
import pytest
import torch
from PIL import Image

from foramen_train.augment import AugmentConfig, add_glare, augment_pair, detect_circle, recolour_objects
from foramen_train.data import SegmentationDataset
from foramen_train.dataset_spec import DataError, load_dataset_spec
from foramen_train.frames import MEAN, STD, read_list

from conftest import CLASSES, COLOUR_OFF, GEOMETRY_OFF, PHOTOMETRIC_OFF


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


@pytest.mark.parametrize(
    "body,field",
    [
        ('[[classes]]\nindex = 0\nname = "a"\ncolor = [0, 0]\n', r"classes\[0\]\.color"),
        ('[[classes]]\nindex = 1\nname = "a"\ncolor = [0, 0, 0]\n', "indices must be 0..0"),
        ("[[classes]]\nindex = 0\nname = 3\ncolor = [0, 0, 0]\n", r"classes\[0\]\.name"),
        (
            'ignore_index = 1\n[[classes]]\nindex = 0\nname = "a"\ncolor = [0, 0, 0]\n'
            '[[classes]]\nindex = 1\nname = "b"\n'
            "color = [1, 1, 1]\n",
            "ignore_index",
        ),
        ("name = [\n", "not valid TOML"),
    ],
)
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
    cfg = AugmentConfig(
        hflip=0.5,
        vflip=0.5,
        rotate_prob=1.0,
        rotate_deg=90,
        scale_min=0.7,
        scale_max=1.6,
        brightness=0,
        contrast=0,
        saturation=0,
        gamma=0,
        hue=0,
        blur_prob=0,
    )
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
    plain, plain_mask = augment_pair(
        image, mask, 160, 96, AugmentConfig(**geometry_off, **colour_off), np.random.default_rng(0)
    )
    jittered, jittered_mask = augment_pair(
        image, mask, 160, 96, AugmentConfig(**geometry_off, blur_prob=1), np.random.default_rng(0)
    )
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


# --- glare and the scope's circular field of view ---------------------------------------


def test_new_augmentations_are_off_by_default():
    cfg = AugmentConfig()
    assert cfg.glare_prob == 0 and cfg.circle is False and cfg.circle_class == 0


def test_glare_changes_only_the_image():
    image, mask = colour_coded()
    cfg = AugmentConfig(**GEOMETRY_OFF, **COLOUR_OFF, glare_prob=1.0, glare_max=3, glare_size=0.15)
    changed_any = 0
    for seed in range(4):
        out, out_mask = augment_pair(image, mask, 160, 96, cfg, np.random.default_rng(seed))
        np.testing.assert_array_equal(out_mask, mask)  # glare hides tissue, it does not relabel it
        changed = np.any(out != image, axis=-1)
        changed_any += changed.sum()
        assert changed.any()
        before, after = image[changed].astype(int), out[changed].astype(int)
        assert (after[:, 0] >= before[:, 0]).all()  # blended towards warm white: red never drops
        assert after.sum(1).mean() > before.sum(1).mean() + 30
        assert after.min(1).max() >= 180  # a near-white core
    assert changed_any < 0.5 * image.shape[0] * image.shape[1] * 4  # highlights, not a wash


def test_glare_is_warm_white():
    gray = np.full((64, 96, 3), 100, dtype=np.uint8)
    out = add_glare(gray, AugmentConfig(glare_prob=1.0), np.random.default_rng(1)).astype(int)
    changed = np.any(out != 100, axis=-1)
    r, g, b = out[changed].T
    assert changed.any() and (r >= g).all() and (g >= b).all() and (r > b).any() and r.max() >= 240


def test_glare_stays_inside_the_field_of_view():
    image, _ = colour_coded()
    fov = np.zeros(image.shape[:2], dtype=bool)
    fov[20:70, 30:120] = True
    cfg = AugmentConfig(glare_prob=1.0, glare_max=5, glare_size=0.3)
    for seed in range(4):
        out = add_glare(image, cfg, np.random.default_rng(seed), fov)
        np.testing.assert_array_equal(out[~fov], image[~fov])
        assert (out[fov] != image[fov]).any()


def scope_frame(outside_class: int, width=160, height=96, cx=66.0, cy=50.0, r=40.0):
    """A circular view (off-centre) on black: class regions inside, ``outside_class`` outside."""
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    inside_classes = [c for c in range(4) if c != outside_class]
    mask = np.full((height, width), inside_classes[0], dtype=np.uint8)
    mask[xx > cx + 8] = inside_classes[1]
    mask[(xx - cx + 14) ** 2 + (yy - cy - 12) ** 2 < 15**2] = inside_classes[2]
    mask[xx < 40] = inside_classes[1]
    disk = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    mask[~disk] = outside_class
    palette = np.array([(230, 60, 60), (60, 180, 75), (70, 130, 230), (240, 200, 60)], dtype=np.uint8)
    palette[outside_class] = 0
    return palette[mask], mask, palette, (cx, cy, r)


def test_detect_circle():
    image, _, _, (cx, cy, r) = scope_frame(0)
    found = detect_circle(image)
    assert found is not None
    assert abs(found.cx - cx) < 1 and abs(found.cy - cy) < 1 and abs(found.r - r) < 1
    full, _ = colour_coded()  # tissue (and black regions) everywhere: no circular view
    assert detect_circle(np.maximum(full, 40)) is None
    assert detect_circle(np.zeros_like(full)) is None


@pytest.mark.parametrize("circle_class", [0, 3])
def test_circle_augmentation_keeps_the_field_of_view(circle_class):
    image, mask, _, (cx, cy, r) = scope_frame(circle_class)
    h, w = mask.shape
    cfg = AugmentConfig(
        hflip=0.5,
        vflip=0.5,
        rotate_prob=1.0,
        rotate_deg=180,
        scale_min=0.7,
        scale_max=1.5,
        brightness=0.3,
        contrast=0.3,
        gamma=0.25,
        blur_prob=0.3,
        glare_prob=0.5,
        circle=True,
        circle_class=circle_class,
    )
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    outside_original = np.hypot(xx - cx, yy - cy) > r + 1.5
    for seed in range(10):
        out, out_mask = augment_pair(image, mask, w, h, cfg, np.random.default_rng(seed))
        # Outside the scope's circle: black and the outside class, after all the jitter.
        assert (out[outside_original] == 0).all() and (out_mask[outside_original] == circle_class).all()
        # The view is still one clean circle (smaller after a zoom-out), not a wedge or a moved disk.
        found = detect_circle(out)
        assert found is not None and found.r <= r + 1.5, (seed, found)
        dist = np.hypot(xx - found.cx, yy - found.cy)
        inside, outside = dist < found.r - 3, dist > found.r + 1.5
        assert (out[inside].max(-1) > 40).all(), seed  # no black wedges inside
        assert (out[outside] == 0).all() and (out_mask[outside] == circle_class).all()
        assert (out_mask[inside] != circle_class).all()


def test_circle_augmentation_keeps_labels_aligned():
    image, mask, palette, _ = scope_frame(0)
    cfg = AugmentConfig(
        hflip=0.5, vflip=0.5, rotate_prob=1.0, rotate_deg=180, scale_min=0.7, scale_max=1.5, **COLOUR_OFF, circle=True
    )
    for seed in range(6):
        out, out_mask = augment_pair(image, mask, 128, 80, cfg, np.random.default_rng(seed))
        distance = ((out[:, :, None, :].astype(np.float32) - palette[None, None].astype(np.float32)) ** 2).sum(-1)
        assert (distance.argmin(-1) == out_mask).mean() > 0.97


def test_without_circle_the_view_moves():
    """The plain geometry (rotation about the frame centre, free crop) moves an off-centre
    circle, which is what ``circle = true`` prevents."""
    image, mask, _, (cx, cy, r) = scope_frame(0)
    h, w = mask.shape
    cfg = AugmentConfig(
        hflip=0.5, vflip=0.5, rotate_prob=1.0, rotate_deg=180, scale_min=0.7, scale_max=1.5, **COLOUR_OFF
    )
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    outside_original = np.hypot(xx - cx, yy - cy) > r + 1.5
    leaks = [
        (augment_pair(image, mask, w, h, cfg, np.random.default_rng(s))[0][outside_original] > 0).any()
        for s in range(6)
    ]
    assert any(leaks)


def test_augment_class_indices_must_be_classes(tiny_dataset):
    spec = load_dataset_spec(tiny_dataset)
    with pytest.raises(DataError, match="data.augment.circle_class: 4 is not a class index"):
        SegmentationDataset(
            read_list(tiny_dataset, "val.txt"), spec, 64, 64, augment=AugmentConfig(circle=True, circle_class=4)
        )
    with pytest.raises(DataError, match=r"data.augment.object_classes: \[4\] are not class indices"):
        SegmentationDataset(
            read_list(tiny_dataset, "val.txt"), spec, 64, 64, augment=AugmentConfig(object_classes=[1, 4])
        )


@pytest.mark.parametrize(
    "field,value",
    [
        ("glare_prob", 1.5),
        ("glare_max", 0),
        ("glare_size", 0.0),
        ("circle_class", 300),
        ("object_prob", -0.1),
        ("object_saturation", 1.5),
        ("object_classes", [6, 256]),
        ("object_gamma_min", 0.0),
        ("object_gamma_max", 0.2),
    ],
)
def test_invalid_new_augment_fields_are_named(field, value):
    with pytest.raises(ValueError, match=f"data.augment.{field}"):
        AugmentConfig(**{field: value}).validate()


def test_epoch_tagged_indices_reach_persistent_workers(tiny_dataset):
    from torch.utils.data import DataLoader, DistributedSampler

    from foramen_train.train_data import EpochTaggedSampler

    spec = load_dataset_spec(tiny_dataset)
    pairs = read_list(tiny_dataset, "train.txt")
    ds = SegmentationDataset(pairs, spec, 64, 64, augment=AugmentConfig(), seed=3)
    sampler = EpochTaggedSampler(DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=3), len(ds))
    loader = DataLoader(ds, batch_size=1, sampler=sampler, num_workers=1, persistent_workers=True)
    seen = {}
    for epoch in (1, 2):
        sampler.set_epoch(epoch)  # never reaches the worker's copy of ds: the index carries it
        order = [i % len(ds) for i in sampler]
        seen[epoch] = {i: img for i, (img, _) in zip(order, loader)}
    for epoch in (1, 2):
        ds.set_epoch(epoch)
        for i, img in seen[epoch].items():
            assert torch.equal(img[0], ds[i][0])
    assert not torch.equal(seen[1][0][0], seen[2][0][0])


# --- recolouring single classes (tubes and instruments of other makes) ------------------


def test_recolouring_changes_only_the_listed_class_and_brightens_it():
    image, mask = colour_coded()
    image = (image // 3).astype(np.uint8)  # dark classes, as a black tube is
    gamma = dict(object_gamma_min=0.4, object_gamma_max=0.4)
    cfg = AugmentConfig(**GEOMETRY_OFF, **PHOTOMETRIC_OFF, object_classes=[2], object_prob=1.0, **gamma)
    out, out_mask = augment_pair(image, mask, 160, 96, cfg, np.random.default_rng(0))
    np.testing.assert_array_equal(out_mask, mask)
    inside = mask == 2
    assert out[inside].astype(int).sum(1).mean() > image[inside].astype(int).sum(1).mean() + 60
    # Only a soft 1-pixel seam may spill over the class's edge: further out nothing moves.
    near = np.zeros_like(inside)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            near |= np.roll(np.roll(inside, dy, 0), dx, 1)
    np.testing.assert_array_equal(out[~near], image[~near])


def test_recolouring_off_draws_nothing_and_absent_classes_change_nothing():
    image, mask = colour_coded()
    base = dict(hflip=0.5, rotate_prob=0.5, scale_min=0.8, scale_max=1.3)
    plain = augment_pair(image, mask, 160, 96, AugmentConfig(**base), np.random.default_rng(5))
    tuned = augment_pair(image, mask, 160, 96, AugmentConfig(**base, object_prob=1.0), np.random.default_rng(5))
    np.testing.assert_array_equal(plain[0], tuned[0])  # no class listed: same random stream
    img = Image.fromarray(image)
    cfg = AugmentConfig(object_classes=[6], object_prob=1.0)
    assert recolour_objects(img, mask, cfg, np.random.default_rng(0)) is img


def test_recolouring_is_refused_on_the_device():
    from foramen_train.config import ConfigError, config_from_dict

    doc = {
        "data": {"root": "x", "augment_on": "device", "augment": {"object_classes": [6]}},
        "model": {"width": 64, "height": 64},
    }
    with pytest.raises(ConfigError, match="object_classes"):
        config_from_dict(doc, "t.toml")
