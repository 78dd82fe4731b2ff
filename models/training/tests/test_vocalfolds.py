"""Real frames from ../shared/data/vocalfolds (skipped when the folder is absent)."""

from pathlib import Path

import pytest
import torch

from foramen_train.config import load_config
from foramen_train.data import SegmentationDataset
from foramen_train.dataset_spec import load_dataset_spec
from foramen_train.frames import evenly_spaced, read_list

CONFIG = Path(__file__).parents[1] / "configs" / "vocalfolds-smoke.toml"
ROOT = Path(load_config(CONFIG).data.root)

pytestmark = pytest.mark.skipif(not (ROOT / "train.txt").is_file(), reason=f"{ROOT} not present")


def test_real_frames_load_with_expected_classes():
    cfg = load_config(CONFIG)
    spec = load_dataset_spec(ROOT, cfg.data.classes)
    assert spec.num_classes == 7 and spec.class_names[0] == "void"
    assert len(read_list(ROOT, "train.txt")) == 310 and len(read_list(ROOT, "val.txt")) == 70
    pairs = evenly_spaced(read_list(ROOT, "val.txt"), 3)
    ds = SegmentationDataset(pairs, spec, width=cfg.model.width, height=cfg.model.height)
    raw_image, raw_mask = ds.raw(0)
    assert raw_image.shape == (512, 512, 3) and raw_mask.shape == (512, 512)
    seen = set()
    for i in range(len(ds)):
        image, mask = ds[i]
        assert image.shape == (3, 256, 256) and mask.shape == (256, 256)
        assert torch.isfinite(image).all()
        seen |= set(mask.unique().tolist())
    assert seen <= set(range(7)) and 0 in seen and len(seen) >= 3
