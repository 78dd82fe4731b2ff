"""`foramen compare` (the reader study) against NumPy and SciPy on random masks."""

import itertools
import json
import subprocess

import numpy as np
import pytest
from PIL import Image
from scipy import stats


def image_scores(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Per-image mean IoU and Dice over foreground classes present in either mask."""
    keep = truth != 255
    t, p = truth[keep], pred[keep]
    ious, dices = [], []
    for c in range(1, 255):
        in_t, in_p = t == c, p == c
        if not in_t.any() and not in_p.any():
            continue
        inter = np.sum(in_t & in_p)
        ious.append(inter / np.sum(in_t | in_p))
        dices.append(2 * inter / (in_t.sum() + in_p.sum()))
    if not ious:
        return 1.0, 1.0
    return float(np.mean(ious)), float(np.mean(dices))


def holm(p: list[float]) -> list[float]:
    order = np.argsort(p)
    m = len(p)
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def make_study(tmp_path, n_images: int, n_readers: int, seed: int):
    rng = np.random.default_rng(seed)
    ref_dir = tmp_path / "reference"
    ref_dir.mkdir()
    readers = {f"r{k}": tmp_path / f"r{k}" for k in range(n_readers)}
    for d in readers.values():
        d.mkdir()
    masks = {}
    for i in range(n_images):
        h, w = rng.integers(9, 40, size=2)
        truth = rng.choice([0, 1, 2, 3], size=(h, w), p=[0.4, 0.3, 0.2, 0.1]).astype(np.uint8)
        if i == 0:
            truth[:] = 255  # an all-ignore image
        if i == 1:
            truth[: h // 2] = 255  # partly ignored
        stem = f"img_{i:03d}"
        Image.fromarray(truth).save(ref_dir / f"{stem}.png")
        masks[stem] = truth
        for k, (_name, d) in enumerate(readers.items()):
            pred = truth.copy()
            pred[pred == 255] = 0
            # Readers err at different rates; image 2 is read perfectly by all (ties).
            rate = 0.0 if i == 2 else 0.05 + 0.1 * k + 0.1 * rng.random()
            flip = rng.random(size=pred.shape) < rate
            pred[flip] = rng.integers(0, 4, size=flip.sum())
            Image.fromarray(pred).save(d / f"{stem}.png")
    return ref_dir, readers, masks


@pytest.mark.parametrize("n_images,n_readers,seed", [(5, 3, 1), (12, 3, 2), (30, 4, 3)])
def test_compare_matches_numpy_and_scipy(tmp_path, foramen_bin, n_images, n_readers, seed):
    ref_dir, readers, masks = make_study(tmp_path, n_images, n_readers, seed)
    out = tmp_path / "out"
    args = [str(foramen_bin), "compare", "--reference", str(ref_dir), "--out", str(out)]
    for name, d in readers.items():
        args += ["--reader", f"{name}={d}"]
    subprocess.run(args, check=True, capture_output=True)
    doc = json.loads((out / "compare.json").read_text())
    assert Image.open(out / "iou_boxplot.png").size == (640, 480)
    assert "![Per-image IoU by reader](iou_boxplot.png)" in (out / "report.md").read_text()

    per_reader = {}
    for name, d in readers.items():
        ious, dices = [], []
        for stem, truth in masks.items():
            pred = np.array(Image.open(d / f"{stem}.png"))
            i, dc = image_scores(truth, pred)
            ious.append(i)
            dices.append(dc)
            assert doc["readers"][name]["per_image_iou"][stem] == pytest.approx(i, abs=1e-12)
        assert doc["readers"][name]["mean_iou"] == pytest.approx(np.mean(ious), abs=1e-12)
        assert doc["readers"][name]["mean_dice"] == pytest.approx(np.mean(dices), abs=1e-12)
        per_reader[name] = np.array(ious)

    groups = list(per_reader.values())
    t = doc["tests"]
    for key, ref in [
        ("anova", stats.f_oneway(*groups)),
        ("kruskal", stats.kruskal(*groups)),
        ("friedman", stats.friedmanchisquare(*groups)),
    ]:
        assert t[key]["statistic"] == pytest.approx(float(ref.statistic), abs=1e-6, rel=1e-9), key
        assert t[key]["p_value"] == pytest.approx(float(ref.pvalue), abs=1e-6), key

    names = list(per_reader)
    pairs = list(itertools.combinations(names, 2))
    refs = [stats.wilcoxon(per_reader[a], per_reader[b], method="approx") for a, b in pairs]
    adjusted = holm([float(r.pvalue) for r in refs])
    assert len(t["pairwise_wilcoxon"]) == len(pairs)
    for got, (a, b), ref, adj in zip(t["pairwise_wilcoxon"], pairs, refs, adjusted):
        assert (got["a"], got["b"]) == (a, b)
        assert got["statistic"] == pytest.approx(float(ref.statistic), abs=1e-6)
        assert got["p_value"] == pytest.approx(float(ref.pvalue), abs=1e-6)
        assert got["p_holm"] == pytest.approx(adj, abs=1e-6)


def test_missing_reader_image_is_a_clear_error(tmp_path, foramen_bin):
    ref_dir, readers, masks = make_study(tmp_path, 3, 1, 9)
    victim = readers["r0"] / "img_001.png"
    victim.unlink()
    r = subprocess.run(
        [
            str(foramen_bin),
            "compare",
            "--reference",
            str(ref_dir),
            "--reader",
            f"r0={readers['r0']}",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "img_001.png" in r.stderr and "r0" in r.stderr
    assert not (tmp_path / "o" / "compare.json").exists()
