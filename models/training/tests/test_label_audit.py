"""The label audit counts dark, band and bulk pixels of a class as drawn."""

import json

import numpy as np
from PIL import Image

from foramen_train import label_audit


def test_audit_of_a_hand_made_frame(tmp_path):
    # 20x20: class 1 on the left, class 2 on the right, a 2-px class-0 gap between them
    # (bright), and a dark 4x4 class-0 corner; one more dark 2x2 patch labelled class 2.
    mask = np.ones((20, 20), np.uint8)
    mask[:, 11:] = 2
    mask[:, 9:11] = 0
    mask[:4, :4] = 0
    image = np.full((20, 20, 3), 180, np.uint8)
    image[:4, :4] = 10
    image[18:, 18:] = 5
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    Image.fromarray(image).save(tmp_path / "i/a.png")
    Image.fromarray(mask).save(tmp_path / "m/a.png")
    (tmp_path / "l.txt").write_text("i/a.png m/a.png\n")
    r = label_audit.audit(tmp_path, "l.txt", 0, dark=40, band=2)
    void = 40 + 16
    assert r["frames_with_class"] == 1 and r["pixel_share"] == void / 400
    assert r["dark_share"] == 16 / void
    # The gap is all within 2 px of another label; of the corner, the pixels with a
    # non-class pixel within 2 px: all but the 2x2 block farthest in (distance > 2).
    assert r["band_share"] == (40 + 16 - 4) / void
    assert r["dark_rule_iou"] == 16 / (void + 4)
    out = tmp_path / "audit.json"
    assert (
        label_audit.main(
            ["--data", str(tmp_path), "--list", "l.txt", "--class-index", "0", "--band", "2", "--json", str(out)]
        )
        == 0
    )
    assert json.loads(out.read_text())[0]["dark_share"] == 16 / void


def test_audit_names_a_bad_mask(tmp_path, capsys):
    (tmp_path / "i").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "i/a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "i/m.png")
    (tmp_path / "l.txt").write_text("i/a.png i/m.png\n")
    assert label_audit.main(["--data", str(tmp_path), "--list", "l.txt", "--class-index", "0"]) == 1
    assert "i/m.png" in capsys.readouterr().err
