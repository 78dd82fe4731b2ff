"""`foramen eval` against scikit-learn on random masks, predictions and probabilities."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix, f1_score, jaccard_score, precision_score, recall_score, roc_auc_score

CLASSES = ["background", "bone", "ligament", "disc", "never"]  # "never" is absent from the truth


def write_case(tmp_path, n_images: int, seed: int, quantize: int | None):
    rng = np.random.default_rng(seed)
    root = tmp_path / "data"
    for sub in ("images", "masks", "pred", "prob"):
        (root / sub).mkdir(parents=True)
    lines, truths, preds, probs = [], [], [], []
    c = len(CLASSES)
    for i in range(n_images):
        h, w = (int(v) for v in rng.integers(7, 33, size=2))
        truth = rng.choice(4, size=(h, w), p=[0.5, 0.2, 0.2, 0.1]).astype(np.uint8)
        if i == 1:
            truth[:] = 255  # all ignored
        truth[rng.random((h, w)) < 0.05] = 255
        logits = rng.normal(size=(c, h, w)) + 2.5 * np.eye(c)[np.where(truth == 255, 0, truth)].transpose(2, 0, 1)
        p = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)
        if quantize:  # coarse probabilities: many exact ties
            p = np.round(p * quantize) / quantize
        p = p.astype(np.float32)
        pred = p.argmax(axis=0).astype(np.uint8)
        stem = f"f{i:03d}"
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(root / "images" / f"{stem}.png")
        Image.fromarray(truth).save(root / "masks" / f"{stem}.png")
        Image.fromarray(pred).save(root / "pred" / f"{stem}.png")
        np.save(root / "prob" / f"{stem}.npy", p)
        lines.append(f"images/{stem}.png masks/{stem}.png")
        truths.append(truth.ravel())
        preds.append(pred.ravel())
        probs.append(p.reshape(c, -1))
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root, np.concatenate(truths), np.concatenate(preds), np.concatenate(probs, axis=1)


@pytest.mark.parametrize("n_images,seed,quantize", [(3, 1, None), (10, 2, 20), (25, 3, None)])
def test_eval_matches_sklearn(tmp_path, foramen_bin, n_images, seed, quantize):
    root, truth, pred, prob = write_case(tmp_path, n_images, seed, quantize)
    out = tmp_path / "out"
    subprocess.run(
        [
            str(foramen_bin),
            "eval",
            "--data",
            str(root),
            "--list",
            "val.txt",
            "--pred",
            str(root / "pred"),
            "--prob",
            str(root / "prob"),
            "--out",
            str(out),
            "--classes",
            ",".join(CLASSES),
        ],
        check=True,
        capture_output=True,
    )
    doc = json.loads((out / "metrics.json").read_text())
    keep = truth != 255
    t, p, pr = truth[keep], pred[keep], prob[:, keep]
    labels = list(range(len(CLASSES)))
    assert doc["classes"] == CLASSES
    assert doc["confusion_matrix"] == confusion_matrix(t, p, labels=labels).tolist()
    prec = precision_score(t, p, labels=labels, average=None, zero_division=np.nan)
    rec = recall_score(t, p, labels=labels, average=None, zero_division=np.nan)
    # jaccard_score has no NaN for 0/0: mark classes absent from truth and prediction.
    absent = np.array([not ((t == k).any() or (p == k).any()) for k in labels])
    iou = np.where(absent, np.nan, jaccard_score(t, p, labels=labels, average=None, zero_division=0))
    dice = np.where(absent, np.nan, f1_score(t, p, labels=labels, average=None, zero_division=0))
    for k, name in enumerate(CLASSES):
        got = doc["per_class"][name]
        for key, ref in [("precision", prec[k]), ("recall", rec[k]), ("iou", iou[k]), ("dice", dice[k])]:
            if np.isnan(ref):
                assert got[key] is None, (name, key)
            else:
                assert got[key] == pytest.approx(ref, abs=1e-12), (name, key)
        assert got["accuracy"] == pytest.approx(np.mean((t == k) == (p == k)), abs=1e-12)
        assert got["support"] == int(np.sum(t == k))
        positives = t == k
        if positives.any() and (~positives).any():
            assert got["auc"] == pytest.approx(roc_auc_score(positives, pr[k]), abs=1e-4), name
        else:
            assert got["auc"] is None, name
    assert doc["pixel_accuracy"] == pytest.approx(np.mean(t == p), abs=1e-12)
    assert doc["mean"]["iou"] == pytest.approx(np.nanmean(iou), abs=1e-12)
    assert doc["mean_foreground"]["iou"] == pytest.approx(np.nanmean(iou[1:]), abs=1e-12)
    in_truth = np.array([(t == k).any() for k in labels])
    assert doc["mean_present"]["iou"] == pytest.approx(np.mean(iou[in_truth]), abs=1e-12)
    assert doc["mean_present"]["dice"] == pytest.approx(np.mean(dice[in_truth]), abs=1e-12)
    if (p == CLASSES.index("never")).any():  # predicted but absent: counted in "mean" only
        assert doc["mean_present"]["iou"] > doc["mean"]["iou"]
    for fig in ("roc", "confusion"):
        assert Image.open(out / f"{fig}.png").size == (640, 480)
        assert (out / f"{fig}.svg").read_text().startswith("<svg")
    assert "AUC" in (out / "report.html").read_text()
    assert len(list((out / "worst").glob("*.png"))) == min(4, n_images)


def test_wrong_probability_shape_names_the_file(tmp_path, foramen_bin):
    root, *_ = write_case(tmp_path, 2, 5, None)
    np.save(root / "prob" / "f000.npy", np.zeros((2, 3, 4), np.float32))
    r = subprocess.run(
        [
            str(foramen_bin),
            "eval",
            "--data",
            str(root),
            "--list",
            "val.txt",
            "--pred",
            str(root / "pred"),
            "--prob",
            str(root / "prob"),
            "--out",
            str(tmp_path / "o"),
            "--classes",
            ",".join(CLASSES),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "f000.npy" in r.stderr and "shape" in r.stderr
    assert not (tmp_path / "o" / "metrics.json").exists()


def write_dataset_toml(root, ignore: list[str]):
    classes = "".join(
        f'\n[[classes]]\nindex = {i}\nname = "{n}"\ncolor = [{i}, {i}, {i}]\n' for i, n in enumerate(CLASSES)
    )
    listed = ", ".join(f'"{n}"' for n in ignore)
    (root / "dataset.toml").write_text(f'name = "t"\nignore_index = 255\nignore_classes = [{listed}]\n{classes}')


def run_eval(foramen_bin, root, out, *extra):
    return subprocess.run(
        [
            str(foramen_bin),
            "eval",
            "--data",
            str(root),
            "--list",
            "val.txt",
            "--pred",
            str(root / "pred"),
            "--prob",
            str(root / "prob"),
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
    )


def test_ignored_classes_are_left_out_like_void_in_cityscapes(tmp_path, foramen_bin):
    root, truth, pred, prob = write_case(tmp_path, 6, 7, None)
    write_dataset_toml(root, ["ligament"])
    r = run_eval(foramen_bin, root, tmp_path / "o")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    # Truth pixels of the ignored class are dropped, as scikit-learn scores the rest.
    keep = (truth != 255) & (truth != CLASSES.index("ligament"))
    t, p, pr = truth[keep], pred[keep], prob[:, keep]
    labels = list(range(len(CLASSES)))
    assert doc["ignored_classes"] == ["ligament"]
    assert doc["confusion_matrix"] == confusion_matrix(t, p, labels=labels).tolist()
    assert doc["per_class"]["ligament"]["ignored"] and doc["per_class"]["ligament"]["support"] == 0
    iou = jaccard_score(t, p, labels=labels, average=None, zero_division=0)
    scored = [k for k in labels if CLASSES[k] != "ligament" and (t == k).any()]
    assert doc["mean_present"]["iou"] == pytest.approx(np.mean(iou[scored]), abs=1e-12)
    # `mean` averages every class with a value, but never an ignored one.
    defined = [k for k in labels if CLASSES[k] != "ligament" and ((t == k).any() or (p == k).any())]
    assert doc["mean"]["iou"] == pytest.approx(np.mean(iou[defined]), abs=1e-12)
    bone = CLASSES.index("bone")
    assert doc["per_class"]["bone"]["auc"] == pytest.approx(roc_auc_score(t == bone, pr[bone]), abs=1e-4)
    assert "Ignored classes: ligament" in (tmp_path / "o" / "report.md").read_text()
    # The largest confusions: scikit-learn's largest off-diagonal cells (the ignored row
    # never), each with the mIoU had its pixels been predicted right.
    cm = confusion_matrix(t, p, labels=labels)
    cells = sorted((-cm[a, b], a, b) for a in scored for b in labels if a != b and cm[a, b])[:5]
    assert [(c["truth"], c["predicted"], c["pixels"]) for c in doc["confusions"]] == [
        (CLASSES[a], CLASSES[b], -n) for n, a, b in cells
    ]
    _, a, b = cells[0]
    fixed = np.where((t == a) & (p == b), a, p)
    iou_fixed = jaccard_score(t, fixed, labels=labels, average=None, zero_division=0)
    assert doc["confusions"][0]["miou_if_right"] == pytest.approx(np.mean(iou_fixed[scored]), abs=1e-12)
    assert doc["confusions"][0]["share_of_truth"] == pytest.approx(cm[a, b] / cm[a].sum(), abs=1e-12)
    # --no-ignore scores every class; --ignore-classes replaces the data set's choice.
    r = run_eval(foramen_bin, root, tmp_path / "all", "--no-ignore")
    assert r.returncode == 0, r.stderr
    every = json.loads((tmp_path / "all" / "metrics.json").read_text())
    assert every["ignored_classes"] == [] and every["per_class"]["ligament"]["support"] > 0
    r = run_eval(foramen_bin, root, tmp_path / "disc", "--ignore-classes", "disc")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "disc" / "metrics.json").read_text())["ignored_classes"] == ["disc"]


def test_an_unknown_ignored_class_is_named(tmp_path, foramen_bin):
    root, *_ = write_case(tmp_path, 2, 8, None)
    write_dataset_toml(root, [])
    r = run_eval(foramen_bin, root, tmp_path / "o", "--ignore-classes", "void")
    assert r.returncode != 0 and "`void`" in r.stderr and "--ignore-classes" in r.stderr
    write_dataset_toml(root, ["nerve"])
    r = run_eval(foramen_bin, root, tmp_path / "o")
    assert r.returncode != 0 and "dataset.toml" in r.stderr and "nerve" in r.stderr
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_each_sequence_is_scored_like_scikit_learn_scores_its_pixels(tmp_path, foramen_bin):
    root, truth, pred, prob = write_case(tmp_path, 9, 11, None)
    write_dataset_toml(root, ["ligament"])
    # Two folders (sequences) and a third of frames named `<video>_<digits>` in one
    # folder: images 0-3 in seqA/, 4-6 in seqB/, 7-8 as clip_000007 / clip_000008.
    lines, sequences, sizes = [], [], []
    for i, line in enumerate((root / "val.txt").read_text().split()[1::2]):
        stem = Path(line).stem
        sizes.append(Image.open(root / line).size)
        folder, name = ("seqA", stem) if i < 4 else ("seqB", stem) if i < 7 else ("clips", f"clip_{i:06d}")
        for sub in ("images", "masks"):
            (root / sub / folder).mkdir(exist_ok=True)
            (root / sub / f"{stem}.png").rename(root / sub / folder / f"{name}.png")
        for sub, ext in (("pred", "png"), ("prob", "npy")):
            (root / sub / f"{stem}.{ext}").rename(root / sub / f"{name}.{ext}")
        lines.append(f"images/{folder}/{name}.png masks/{folder}/{name}.png")
        sequences.append(f"images/{folder}" if i < 7 else "images/clips/clip")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    r = run_eval(foramen_bin, root, tmp_path / "o")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    # Each image's pixels, in list order, tagged with its sequence.
    tag = np.concatenate([np.full(w * h, s, dtype=object) for s, (w, h) in zip(sequences, sizes)])
    labels = list(range(len(CLASSES)))
    got = {s["name"]: s for s in doc["sequences"]}
    assert sorted(got) == sorted(set(sequences))
    for name, s in got.items():
        keep = (tag == name) & (truth != 255) & (truth != CLASSES.index("ligament"))
        t, p = truth[keep], pred[keep]
        iou = jaccard_score(t, p, labels=labels, average=None, zero_division=0)
        present = [k for k in labels if CLASSES[k] != "ligament" and (t == k).any()]
        assert s["images"] == sequences.count(name)
        assert s["miou"] == pytest.approx(np.mean(iou[present]), abs=1e-12), name
        assert s["pixel_accuracy"] == pytest.approx(np.mean(t == p), abs=1e-12), name
        for k in labels:
            if CLASSES[k] == "ligament":
                assert "ligament" not in s["iou"]
            elif k in present:
                assert s["iou"][CLASSES[k]] == pytest.approx(iou[k], abs=1e-12), (name, k)
            else:
                assert s["iou"][CLASSES[k]] is None, (name, k)
    report = (tmp_path / "o" / "report.md").read_text()
    assert "| sequence | images | mIoU | pixel accuracy | background | bone | disc | never |" in report
