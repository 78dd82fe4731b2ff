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


def test_by_sequence_singles_out_the_folder_that_draws_the_class_differently(tmp_path):
    # Two sequences; each frame is half dark. Class 1 covers the dark half in seq a and
    # the bright half in seq b (another labelling convention for the same class).
    lines = []
    for seq, rows in (("p/a", slice(0, 4)), ("p/b", slice(4, 8))):
        (tmp_path / "img" / seq).mkdir(parents=True)
        (tmp_path / "ann" / seq).mkdir(parents=True)
        for k in range(2):
            image = np.full((8, 8, 3), 200, np.uint8)
            image[:4] = 10
            mask = np.zeros((8, 8), np.uint8)
            mask[rows] = 1
            Image.fromarray(image).save(tmp_path / "img" / seq / f"{k}.png")
            Image.fromarray(mask).save(tmp_path / "ann" / seq / f"{k}.png")
            lines.append(f"img/{seq}/{k}.png ann/{seq}/{k}.png")
    (tmp_path / "l.txt").write_text("\n".join(lines) + "\n")
    whole = label_audit.audit(tmp_path, "l.txt", 1)
    assert whole["dark_share"] == 0.5 and whole["frames_with_class"] == 4
    per = label_audit.audit_by_sequence(tmp_path, "l.txt", 1)
    assert [(r["list"], r["frames"], r["dark_share"]) for r in per] == [
        ("l.txt:img/p/a", 2, 1.0),
        ("l.txt:img/p/b", 2, 0.0),
    ]
    out = tmp_path / "seq.json"
    args = ["--data", str(tmp_path), "--list", "l.txt", "--class-index", "1", "--by-sequence", "--json", str(out)]
    assert label_audit.main(args) == 0
    assert [r["dark_share"] for r in json.loads(out.read_text())] == [1.0, 0.0]
