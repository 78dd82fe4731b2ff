"""Makes docs/window-states.jpg from the window's own screenshots.

The screenshots come from the kittest that walks through every badge state:

    mkdir -p out/shots
    FORAMEN_TEST_SHOTS=out/shots cargo test --release -p foramen-app --lib each_state
    .venv/bin/python tools/window_states.py out/shots docs/window-states.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

# Screenshot name (without .png) and its caption, in reading order.
STATES = [
    ("1-drawing-rec", "AI ON: classes drawn, recording"),
    ("2-all-hidden", "every class hidden: OVERLAY OFF"),
    ("3-stale", "masks too old: AI PAUSED: STALE"),
    ("4-ai-off", "model missing: AI OFF, video only"),
    ("5-no-signal", "capture silent: NO SIGNAL"),
    ("7-not-ready", "start of case: readiness check"),
]
TILE_W = 960


def main(shots: Path, out: Path) -> None:
    """Tiles the window screenshots in `shots` with captions into the contact sheet `out`."""
    tiles = []
    for name, caption in STATES:
        path = shots / f"{name}.png"
        if not path.is_file():
            sys.exit(f"{path}: missing (run the kittest with FORAMEN_TEST_SHOTS first)")
        img = Image.open(path).convert("RGB")
        img = img.resize((TILE_W, round(img.height * TILE_W / img.width)), Image.LANCZOS)
        bar = Image.new("RGB", (img.width, 36), (25, 25, 25))
        ImageDraw.Draw(bar).text((10, 8), caption, fill=(235, 235, 235), font_size=20)
        tile = Image.new("RGB", (img.width, img.height + bar.height))
        tile.paste(bar, (0, 0))
        tile.paste(img, (0, bar.height))
        tiles.append(tile)
    cols = 2
    rows = (len(tiles) + cols - 1) // cols
    tw, th = tiles[0].size
    sheet = Image.new("RGB", (cols * tw + (cols - 1) * 8, rows * th + (rows - 1) * 8), (0, 0, 0))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * (tw + 8), (i // cols) * (th + 8)))
    sheet.save(out, quality=85)
    print(f"{out}: {sheet.width}x{sheet.height}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: window_states.py SHOTS_DIR OUT.jpg")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
