"""Foramen's Label Studio RLE against Label Studio's own codec (`label-studio-converter`'s
`brush` module), both directions, bit for bit, on random masks of odd sizes."""

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

brush = pytest.importorskip("label_studio_converter.brush")

CLASSES = ["bone", "ligament", "disc"]
SIZES = [(1, 1), (3, 5), (17, 9), (64, 33), (131, 77), (251, 199)]


def random_mask(rng, w, h):
    """Blobs with long runs and stray pixels, classes 0..3."""
    m = np.zeros(h * w, dtype=np.uint8)
    cur = 0
    for i in range(h * w):
        if rng.random() < 0.04:
            cur = int(rng.integers(0, 4))
        m[i] = int(rng.integers(0, 4)) if rng.random() < 0.01 else cur
    return m.reshape(h, w)


def big_uniform():
    """One class almost everywhere: runs far past 65,536 values (Label Studio's 16-bit
    run field, split into several runs)."""
    m = np.full((250, 300), 1, np.uint8)
    m[0, 0] = 0
    m[-1, -1] = 3
    return m


def write_images(folder, masks):
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for k, m in enumerate(masks):
        h, w = m.shape
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(folder / "images" / f"vid{k % 2}_{k:04d}.png")
        Image.fromarray(m).save(folder / "masks" / f"vid{k % 2}_{k:04d}.png")


def test_rust_encoder_is_label_studios_bit_for_bit(tmp_path, foramen_bin):
    rng = np.random.default_rng(1)
    masks = [random_mask(rng, w, h) for (w, h) in SIZES] + [big_uniform()]
    write_images(tmp_path, masks)
    out = tmp_path / "tasks.json"
    subprocess.run(
        [
            foramen_bin,
            "export",
            "label-studio",
            "--images",
            tmp_path / "images",
            "--masks",
            tmp_path / "masks",
            "--out",
            out,
        ],
        check=True,
        capture_output=True,
    )
    tasks = json.loads(out.read_text())
    assert len(tasks) == len(masks)
    by_name = {t["data"]["image"].rsplit("/", 1)[-1]: t for t in tasks}
    compared = 0
    for k, m in enumerate(masks):
        task = by_name[f"vid{k % 2}_{k:04d}.png"]
        results = task["predictions"][0]["result"] if "predictions" in task else []
        by_label = {r["value"]["brushlabels"][0]: r for r in results}
        for c, name in enumerate(CLASSES, start=1):
            layer = ((m == c) * 255).astype(np.uint8)
            if not layer.any():
                assert name not in by_label
                continue
            r = by_label[name]
            assert (r["original_width"], r["original_height"]) == (m.shape[1], m.shape[0])
            ours = r["value"]["rle"]
            assert ours == brush.mask2rle(layer), f"mask {k} class {name}: encoders differ"
            decoded = brush.decode_rle(bytes(ours)).reshape(m.shape[0], m.shape[1], 4)[:, :, 3]
            assert np.array_equal(decoded, layer)
            compared += 1
    assert compared >= 10


def test_rust_decoder_reads_label_studio_brushes_and_polygons(tmp_path, foramen_bin):
    rng = np.random.default_rng(2)
    masks = [random_mask(rng, w, h) for (w, h) in SIZES] + [big_uniform()]
    write_images(tmp_path, masks)
    export = []
    for k, m in enumerate(masks):
        h, w = m.shape
        results = []
        for c, name in enumerate(CLASSES, start=1):
            layer = ((m == c) * 255).astype(np.uint8)
            if layer.any():
                results.append(
                    {
                        "type": "brushlabels",
                        "from_name": "tag",
                        "to_name": "image",
                        "original_width": w,
                        "original_height": h,
                        "value": {"format": "rle", "rle": brush.mask2rle(layer), "brushlabels": [name]},
                    }
                )
        export.append(
            {
                "id": 100 + k,
                "data": {"image": f"/data/upload/1/{k:08x}-vid{k % 2}_{k:04d}.png"},
                "annotations": [{"result": results}],
            }
        )
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    ds = tmp_path / "ds"
    subprocess.run(
        [
            foramen_bin,
            "import",
            "label-studio",
            path,
            "--images",
            tmp_path / "images",
            "--out",
            ds,
            "--classes",
            ",".join(CLASSES),
            "--split",
            "50,50,0",
        ],
        check=True,
        capture_output=True,
    )
    for k, m in enumerate(masks):
        got = np.array(Image.open(ds / "masks" / f"vid{k % 2}_{k:04d}.png"))
        assert np.array_equal(got, m), f"mask {k}"
    # Split by video: each video's frames all land in one list.
    train = (ds / "train.txt").read_text().split()
    val = (ds / "val.txt").read_text().split()
    for vid in ("vid0", "vid1"):
        assert not (any(vid in x for x in train) and any(vid in x for x in val))
