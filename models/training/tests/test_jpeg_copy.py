"""jpeg_copy.py: the JPEG copy of a data set for the lent GPU, split over two calls."""

from __future__ import annotations

import os
from pathlib import Path

import jpeg_copy
import numpy as np
import pytest
from PIL import Image


def write_sequences(root: Path, frames: dict[str, int]) -> Path:
    """A PaddleSeg-list data set with one image folder per sequence (noise frames, so
    their JPEGs are large) and a dataset.toml; every sequence's frames in train.txt, the
    first frame of each also in val.txt."""
    rng = np.random.default_rng(0)
    train, val = [], []
    for seq, count in frames.items():
        (root / "img" / seq).mkdir(parents=True)
        (root / "annot" / seq).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / "img" / seq / f"{i}.png")
            Image.fromarray((rng.integers(0, 3, (48, 64)) * 1).astype(np.uint8)).save(root / "annot" / seq / f"{i}.png")
            line = f"img/{seq}/{i}.png annot/{seq}/{i}.png\n"
            train.append(line)
            if i == 0:
                val.append(line)
    (root / "train.txt").write_text("".join(train))
    (root / "val.txt").write_text("".join(val))
    (root / "dataset.toml").write_text('name = "seqs"\n')
    return root


def test_the_copy_has_jpeg_frames_the_same_masks_and_rewritten_lists(tmp_path: Path):
    src = write_sequences(tmp_path / "src", {"a": 2, "b": 1})
    assert jpeg_copy.main([str(src), str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert (out / "val.txt").read_text() == "img/a/0.jpg annot/a/0.png\nimg/b/0.jpg annot/b/0.png\n"
    for line in (out / "train.txt").read_text().splitlines():
        image, mask = line.split()
        assert Image.open(out / image).format == "JPEG"
        # quality 95, 4:4:4: close to the PNG, not equal
        png = src / Path(image).with_suffix(".png")
        diff = np.abs(np.asarray(Image.open(out / image), int) - np.asarray(Image.open(png), int))
        assert 0 < diff.mean() < 12
        assert (out / mask).read_bytes() == (src / mask).read_bytes()
    assert (out / "dataset.toml").read_text() == 'name = "seqs"\n'


def test_spill_moves_the_largest_image_folders_behind_relative_links(tmp_path: Path, capsys):
    src = write_sequences(tmp_path / "src", {"small": 1, "big": 6, "mid": 3})
    out, spill = tmp_path / "repo" / ".vf", tmp_path / "repo" / ".vft"
    # A frame's JPEG is ~7 kB: the big folder must go, and the mid one with it to reach 20 kB.
    assert jpeg_copy.main([str(src), str(out), "--spill", str(spill), "--max-mb", "0.02"]) == 0
    assert jpeg_copy.tree_bytes(out) <= 20_000
    assert sorted(p.name for p in (out / "img").iterdir() if p.is_symlink()) == ["big", "mid"]
    assert not (out / "img" / "small").is_symlink()
    assert os.readlink(out / "img" / "big") == "../../.vft/img/big"
    assert sorted(p.name for p in (spill / "img").iterdir()) == ["big", "mid"]
    # Every listed frame opens through the links, and still does with both folders moved
    # side by side elsewhere (as the device tool's copy of the repository holds them).
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "repo").rename(moved / "repo")
    for line in (moved / "repo" / ".vf" / "train.txt").read_text().splitlines():
        image, mask = line.split()
        Image.open(moved / "repo" / ".vf" / image).load()
        assert (moved / "repo" / ".vf" / mask).is_file()
    assert "2 image folders" in capsys.readouterr().out


def test_bad_input_is_named_and_nothing_is_written(tmp_path: Path, capsys):
    src = write_sequences(tmp_path / "src", {"a": 2})
    with (src / "val.txt").open("a") as fh:
        fh.write("img/a/1.png\n")
    assert jpeg_copy.main([str(src), str(tmp_path / "out")]) == 1
    assert f"{src / 'val.txt'}:2: expected 'image mask'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    (src / "val.txt").write_text("img/a/9.png annot/a/0.png\n")
    assert jpeg_copy.main([str(src), str(tmp_path / "out")]) == 1
    assert f"{src / 'val.txt'}:1: {src / 'img/a/9.png'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    (tmp_path / "taken").mkdir()
    assert jpeg_copy.main([str(src), str(tmp_path / "taken")]) == 1
    assert "taken: exists" in capsys.readouterr().err


def test_a_limit_the_masks_alone_exceed_is_refused(tmp_path: Path, capsys):
    src = write_sequences(tmp_path / "src", {"a": 2})
    assert jpeg_copy.main([str(src), str(tmp_path / "out"), "--spill", str(tmp_path / "sp"), "--max-mb", "0"]) == 1
    assert "after moving every image folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        jpeg_copy.main([str(src), str(tmp_path / "out2"), "--max-mb", "1"])
