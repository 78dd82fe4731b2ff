"""Copy a PaddleSeg-list data set with its images as JPEG, for the lent GPU machine.

That machine does not see ../shared and takes at most 64 MiB of files per call, so
vocalfolds (146 MB of PNG) travels as quality-95 JPEG (4:4:4, about 51 MB) with its
masks unchanged and its lists rewritten. Validation numbers that count are measured on
the original PNGs afterwards (`foramen eval`).

    python models/training/jpeg_copy.py ../shared/data/vocalfolds .vf
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image


def main(argv: list[str]) -> int:
    """Copy ``SRC`` to ``DST``; return the exit status."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = Path(argv[0]), Path(argv[1])
    for name in ("train.txt", "val.txt"):
        lines = []
        for number, line in enumerate((src / name).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                print(f"{src / name}:{number}: expected 'image mask', got {line!r}", file=sys.stderr)
                return 1
            image, mask = parts
            jpeg = str(Path(image).with_suffix(".jpg"))
            (dst / jpeg).parent.mkdir(parents=True, exist_ok=True)
            (dst / mask).parent.mkdir(parents=True, exist_ok=True)
            Image.open(src / image).convert("RGB").save(dst / jpeg, quality=95, subsampling=0)
            shutil.copy(src / mask, dst / mask)
            lines.append(f"{jpeg} {mask}\n")
        (dst / name).write_text("".join(lines), encoding="utf-8")
    for extra in ("README.md", "LICENSE"):
        if (src / extra).exists():
            shutil.copy(src / extra, dst / extra)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
