"""The label-to-image GAN: label-map synthesis, networks, KID, training, the recipe option
and the ablation, on the tiny synthetic data set."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from foramen_train import ablation, gan, train, train_data
from foramen_train.config import ConfigError, load_config

from conftest import CLASSES, COLOUR_OFF, TINY_MODEL, augment_table

GAN_CONFIG = (
    """
[data]
root = "{root}"
"""
    + augment_table(vflip=0.0, **COLOUR_OFF)
    + """[gan]
size = 32
base_channels = 8
depth = 3
disc_channels = 8
epochs = 2
batch_size = 4
[labels]
paste_classes = [1]
"""
)


def _masks(n: int = 4, size: int = 48) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = []
    for _ in range(n):
        m = np.zeros((size, size), np.uint8)
        x, y = rng.integers(0, size // 2, 2)
        m[y : y + size // 3, x : x + size // 3] = 1
        m[size // 2 :, :] = np.where(m[size // 2 :, :] == 0, 2, m[size // 2 :, :])
        m[:2] = 255
        out.append(m)
    return out


def test_synthesized_label_maps_keep_the_label_set_and_are_reproducible():
    cfg = gan.LabelSynthConfig(elastic_prob=1.0, splice_prob=1.0, paste_prob=1.0, paste_classes=[1])
    masks = _masks()
    first = gan.synthesize_label_map(masks, 40, cfg, np.random.default_rng(7))
    again = gan.synthesize_label_map(masks, 40, cfg, np.random.default_rng(7))
    other = gan.synthesize_label_map(masks, 40, cfg, np.random.default_rng(8))
    assert first.shape == (40, 40) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    allowed = {0, 1, 2, 255}
    for seed in range(10):
        assert set(np.unique(gan.synthesize_label_map(masks, 40, cfg, np.random.default_rng(seed)))) <= allowed


def test_synthesized_maps_are_new_layouts():
    cfg = gan.LabelSynthConfig(elastic_prob=1.0, splice_prob=0.5, paste_prob=0.5, paste_classes=[1])
    masks = [np.asarray(Image.fromarray(m).resize((40, 40), Image.Resampling.NEAREST)) for m in _masks()]
    for seed in range(5):
        out = gan.synthesize_label_map(masks, 40, cfg, np.random.default_rng(seed))
        assert all((out != m).mean() > 0.02 for m in masks)


def test_elastic_deformation_is_smooth_and_bounded():
    mask = np.zeros((64, 64), np.uint8)
    mask[:, 32:] = 1
    out = gan.elastic_deform(mask, alpha=0.05, sigma=0.1, rng=np.random.default_rng(0))
    assert set(np.unique(out)) == {0, 1}
    assert not np.array_equal(out, mask)
    # Displacements of at most 0.05 * 64 = 3.2 px: the edge moves, but not further.
    assert (out[:, :28] == 0).all() and (out[:, 37:] == 1).all()


def test_splice_takes_both_maps():
    a, b = np.zeros((50, 50), np.uint8), np.ones((50, 50), np.uint8)
    out = gan.splice(a, b, np.random.default_rng(1))
    assert 0.1 < out.mean() < 0.9


def test_one_hot_leaves_ignored_pixels_empty():
    labels = torch.tensor([[[0, 2], [255, 1]]])
    hot = gan.one_hot(labels, 3)
    assert hot.shape == (1, 3, 2, 2)
    assert hot[0, :, 1, 0].sum() == 0
    assert hot[0, 2, 0, 1] == 1 and hot[0, :, 0, 1].sum() == 1


def test_networks_shapes_and_generator_range():
    cfg = gan.GeneratorConfig(num_classes=4, size=64, base_channels=8, depth=4)
    g = gan.UNetGenerator(cfg).eval()
    x = gan.one_hot(torch.randint(0, 4, (2, 64, 64)), 4)
    y = g(x)
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1
    d = gan.PatchDiscriminator(4, 8, 3)
    assert d(x, y).shape == (2, 1, 6, 6)  # 64 -> 32 -> 16 -> 8 -> 7 -> 6 (70x70 PatchGAN layout)
    with pytest.raises(gan.GanError, match="multiple of 2\\*\\*depth"):
        gan.GeneratorConfig(num_classes=4, size=60, depth=3).validate()


def _naive_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], len(x)
    k = lambda a, b: (float(a @ b) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_the_unbiased_mmd_and_separates_distributions():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.8
    mean, std = gan.kid(x, y, subsets=3)
    assert mean == pytest.approx(_naive_mmd2(x, y), rel=1e-9) and std == pytest.approx(0, abs=1e-12)
    same = gan.kid(rng.normal(size=(200, 5)), rng.normal(size=(200, 5)), subsets=5)[0]
    shifted = gan.kid(rng.normal(size=(200, 5)), rng.normal(size=(200, 5)) + 0.8, subsets=5)[0]
    assert abs(same) < 0.05 < shifted
    with pytest.raises(gan.GanError, match="subset size"):
        gan.kid(x, y, subset_size=20)


@pytest.fixture(scope="module")
def generator_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("gan")
    config = tmp / "gan.toml"
    config.write_text(GAN_CONFIG.format(root=tiny_dataset))
    out = tmp / "out"
    assert gan.main(["train", "--config", str(config), "--out", str(out)]) == 0
    return out


def test_gan_training_writes_a_loadable_generator(generator_run: Path):
    assert {p.name for p in generator_run.iterdir()} >= {
        "generator.pt",
        "log.csv",
        "grid.png",
        "summary.json",
        "config.toml",
    }
    summary = json.loads((generator_run / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["steps"] == 4 and math.isfinite(summary["val_l1"])
    g = gan.Generator(generator_run / "generator.pt")
    assert g.dataset.class_names == [n for n, _ in CLASSES]
    labels = np.zeros((3, 50, 70), np.uint8)
    labels[:, :, 35:] = 2
    images = g.generate(labels)
    assert images.shape == (3, 50, 70, 3) and images.dtype == np.uint8
    assert np.array_equal(images, g.generate(labels))  # sampling is deterministic
    grid = Image.open(generator_run / "grid.png")
    assert grid.size == (3 * 160 + 2 * 4, (4 + 3) * 164 - 4)  # 4 val rows (the tiny set) + 3 synthetic


def test_generator_errors_name_the_file(tmp_path: Path):
    with pytest.raises(gan.GanError, match="not found"):
        gan.Generator(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"format": 99}, bad)
    with pytest.raises(gan.GanError, match=str(bad)):
        gan.Generator(bad)


def test_gan_config_names_bad_fields(tiny_dataset: Path, tmp_path: Path):
    config = tmp_path / "gan.toml"
    config.write_text(GAN_CONFIG.format(root=tiny_dataset) + "splice_prob = 1.5\n")
    with pytest.raises(gan.GanError, match="labels.splice_prob"):
        gan.load_gan_config(config)
    config.write_text(GAN_CONFIG.format(root=tiny_dataset).replace("[gan]", "[gan]\nsizes = 3"))
    with pytest.raises(gan.GanError, match="gan.sizes"):
        gan.load_gan_config(config)


SEG_CONFIG = """
[data]
root = "{root}"
[data.gan]
generator = "{generator}"
ratio = {ratio}
{model}
[train]
epochs = 1
batch_size = 4
[export]
parity_frames = 1
"""


def test_recipe_adds_synthetic_pairs_per_epoch(tiny_dataset: Path, generator_run: Path, tmp_path: Path):
    config = tmp_path / "seg.toml"
    config.write_text(
        SEG_CONFIG.format(root=tiny_dataset, generator=generator_run / "generator.pt", ratio=0.5, model=TINY_MODEL)
    )
    cfg = load_config(config)
    _, train_ds, _ = train_data.build_datasets(cfg)
    assert len(train_ds.pairs) == 8 and len(train_ds) == 12
    train_ds.set_epoch(1)
    image, mask = train_ds[10]
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64)
    again_image, _ = train_ds[10]
    assert torch.equal(image, again_image)
    train_ds.set_epoch(2)
    assert not torch.equal(image, train_ds[10][0])  # new synthetic pairs every epoch
    # A real frame is augmented as without the option (same stream), so the arms compare fairly.
    cfg_off = load_config(config, ["data.gan.ratio=0"])
    _, plain_ds, _ = train_data.build_datasets(cfg_off)
    plain_ds.set_epoch(2)
    assert len(plain_ds) == 8 and torch.equal(plain_ds[3][0], train_ds[3][0])
    out = tmp_path / "run"
    assert train.main(["--config", str(config), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synthetic_frames_per_epoch"] == 4 and summary["steps"] == 3


def test_recipe_option_errors(tiny_dataset: Path, generator_run: Path, tmp_path: Path):
    config = tmp_path / "seg.toml"
    config.write_text(
        SEG_CONFIG.format(root=tiny_dataset, generator=generator_run / "generator.pt", ratio=0.5, model=TINY_MODEL)
    )
    with pytest.raises(ConfigError, match="data.augment_on"):
        load_config(config, ['data.augment_on="device"'])
    with pytest.raises(ConfigError, match="data.gan.ratio"):
        load_config(config, ["data.gan.ratio=-1"])
    missing = load_config(config, [f'data.gan.generator="{tmp_path / "none.pt"}"'])
    with pytest.raises(gan.GanError, match="none.pt"):
        train_data.build_datasets(missing)
    # The tiny set's dataset.toml names its classes; a generator from other classes is refused.
    state = torch.load(generator_run / "generator.pt", weights_only=False)
    state["dataset"]["classes"][1]["name"] = "tool"
    other = tmp_path / "other.pt"
    torch.save(state, other)
    with pytest.raises(gan.GanError, match="trained on classes"):
        train_data.build_datasets(load_config(config, [f'data.gan.generator="{other}"']))


def test_equal_step_budget():
    assert ablation.equal_step_epochs(40, 310, 155, 8) == 26  # 38 vs 58 steps per epoch
    assert ablation.equal_step_epochs(10, 8, 0, 4) == 10


def test_summary_verdict_needs_a_gain_beyond_the_spread():
    def runs(values):
        return {s: {"last_miou": v, "best_miou": v + 0.01, "steps": 100} for s, v in enumerate(values)}

    clear = ablation.summarize({"real": runs([0.50, 0.51, 0.49]), "gan": runs([0.60, 0.61, 0.59])})
    assert clear["helps"] and clear["gain_last_miou"] == pytest.approx(0.10)
    assert clear["welch_p_last_miou"] < 0.01
    noisy = ablation.summarize({"real": runs([0.50, 0.56, 0.44]), "gan": runs([0.53, 0.59, 0.47])})
    assert not noisy["helps"] and noisy["spread"] == pytest.approx(0.06)
    table = ablation.markdown(noisy, 0.5, "g.pt")
    assert "0.500 ± 0.060" in table and "does **not** help" in table


def test_ablation_runs_both_arms_with_equal_steps_and_resumes(tiny_dataset: Path, generator_run: Path, tmp_path: Path):
    config = tmp_path / "seg.toml"
    config.write_text(
        SEG_CONFIG.format(root=tiny_dataset, generator="", ratio=0, model=TINY_MODEL).replace(
            "epochs = 1", "epochs = 3"
        )
    )
    out = tmp_path / "ablation"
    args = [
        "--config",
        str(config),
        "--generator",
        str(generator_run / "generator.pt"),
        "--ratio",
        "1.0",
        "--seeds",
        "0",
        "1",
        "--out",
        str(out),
    ]
    assert ablation.main(args) == 0
    doc = json.loads((out / "ablation.json").read_text())
    assert doc["arms"]["real"]["steps"] == [6, 6]  # 3 epochs x 2 steps
    assert doc["arms"]["gan"]["steps"] == [8, 8]  # round(3 * 2 / 4) = 2 epochs x 4 steps
    assert {p.name for p in out.iterdir()} >= {"real-seed0", "gan-seed1", "ablation.md"}
    before = (out / "real-seed0" / "metrics.csv").stat().st_mtime_ns
    assert ablation.main(args) == 0
    assert (out / "real-seed0" / "metrics.csv").stat().st_mtime_ns == before


def test_class_mean_painting_paints_each_class_in_its_training_colour():
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 1
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = (10, 20, 30)
    image[:, 4:] = (200, 100, 50)
    painted = gan.class_mean_painting([mask[::-1].copy()], [(image, mask)], num_classes=2, blur=0.0)[0]
    assert (painted[:, :4] == (10, 20, 30)).all() and (painted[:, 4:] == (200, 100, 50)).all()


def test_seg_miou_of_a_perfect_predictor_is_one():
    masks = [np.array([[0, 1], [1, 2]], np.uint8)]
    images = [np.zeros((2, 2, 3), np.uint8)]
    meta = {"input": {"width": 2, "height": 2, "scale": 255.0, "mean": [0, 0, 0], "std": [1, 1, 1]}}
    perfect = lambda x: np.eye(3, dtype=np.float32)[masks[0]].transpose(2, 0, 1)[None]  # noqa: E731
    result = gan.seg_miou(perfect, meta, images, masks, 3, 255)
    assert result["miou"] == 1.0


def test_quality_reports_kid_and_segmentation_of_generated_images(
    tiny_dataset: Path, generator_run: Path, tmp_path: Path
):
    config = tmp_path / "seg.toml"
    config.write_text(SEG_CONFIG.format(root=tiny_dataset, generator="", ratio=0, model=TINY_MODEL))
    run = tmp_path / "run"
    assert train.main(["--config", str(config), "--out", str(run), "--no-progress"]) == 0
    out = tmp_path / "quality.json"
    assert (
        gan.main(
            [
                "quality",
                "--generator",
                str(generator_run / "generator.pt"),
                "--features",
                str(run / "best.pt"),
                "--seg-model",
                str(run / "model.onnx"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert set(doc["kid"]) == {"generated", "class_mean_painting", "real_train"}
    assert all(math.isfinite(v["mean"]) for v in doc["kid"].values())
    assert set(doc["seg_miou"]) == {"real", "generated", "class_mean_painting"}
    assert all(0 <= v["miou"] <= 1 for v in doc["seg_miou"].values())
    assert doc["val_frames"] == 4 and doc["train_frames"] == 8
