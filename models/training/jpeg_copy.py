"""Copy a PaddleSeg-list data set with its images as JPEG, for the lent GPU machine.

That machine does not see ../shared and takes at most 64 MiB of files per call, so
vocalfolds (146 MB of PNG) travels as quality-95 JPEG (4:4:4, about 51 MB) with its
masks unchanged and its lists rewritten. Validation numbers that count are measured on
the original PNGs afterwards (`foramen eval`).

    python models/training/jpeg_copy.py ../shared/data/vocalfolds .vf [--spill .vft --max-mb 22]

With the working tree (27 MB) and the encoder's weights (17.4 MB) the copy still exceeds
one call, so ``--spill DIR --max-mb MB`` moves the largest image folders into DIR, each
replaced by a relative link, until DST holds at most MB megabytes (10^6 bytes): DST and
DIR then travel in two calls (training README, "Long runs on the lent GPU"). The links
resolve wherever DST and DIR sit side by side, as they do in the repository root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from PIL import Image

LISTS = ("train.txt", "val.txt")
EXTRAS = ("README.md", "LICENSE", "dataset.toml")


class CopyError(Exception):
    """A list line, a source file or an output that cannot be used, named in the message."""


def read_pairs(src: Path) -> dict[str, list[tuple[str, str]]]:
    """Every list's ``(image, mask)`` pairs, all checked before anything is written."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    for name in LISTS:
        path = src / name
        if not path.is_file():
            raise CopyError(f"{path}: no such list")
        pairs[name] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise CopyError(f"{path}:{number}: expected 'image mask', got {line!r}")
            for file in parts:
                if not (src / file).is_file():
                    raise CopyError(f"{path}:{number}: {src / file} does not exist")
            pairs[name].append((parts[0], parts[1]))
    return pairs


def copy(src: Path, dst: Path, pairs: dict[str, list[tuple[str, str]]]) -> list[Path]:
    """Write the JPEG images, the masks, the rewritten lists and the extras; return the
    image folders in DST."""
    folders: dict[Path, None] = {}
    for name, entries in pairs.items():
        lines = []
        for image, mask in entries:
            jpeg = Path(image).with_suffix(".jpg")
            (dst / jpeg).parent.mkdir(parents=True, exist_ok=True)
            (dst / mask).parent.mkdir(parents=True, exist_ok=True)
            Image.open(src / image).convert("RGB").save(dst / jpeg, quality=95, subsampling=0)
            shutil.copy(src / mask, dst / mask)
            lines.append(f"{jpeg.as_posix()} {mask}\n")
            folders[(dst / jpeg).parent] = None
        (dst / name).write_text("".join(lines), encoding="utf-8")
    for extra in EXTRAS:
        if (src / extra).exists():
            shutil.copy(src / extra, dst / extra)
    return list(folders)


def tree_bytes(root: Path) -> int:
    """Bytes of the files under ``root``; links are not followed (they travel as links)."""
    total = 0
    for folder, _, files in os.walk(root):
        total += sum(os.lstat(Path(folder) / f).st_size for f in files)
    return total


def spill(dst: Path, folders: list[Path], spill_dir: Path, max_bytes: int) -> list[Path]:
    """Move the largest of ``folders`` (inside ``dst``) into ``spill_dir`` at the same
    relative path, each replaced by a relative link, until ``dst`` holds at most
    ``max_bytes``; return the folders moved."""
    moved = []
    for folder in sorted(folders, key=lambda f: (-tree_bytes(f), str(f))):
        if tree_bytes(dst) <= max_bytes:
            break
        target = spill_dir / folder.relative_to(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(folder, target)
        folder.symlink_to(os.path.relpath(target, folder.parent), target_is_directory=True)
        moved.append(folder)
    left = tree_bytes(dst)
    if left > max_bytes:
        raise CopyError(
            f"{dst}: {left / 1e6:.1f} MB left after moving every image folder to {spill_dir} "
            f"(masks, lists and extras), more than --max-mb {max_bytes / 1e6:g}"
        )
    return moved


def main(argv: list[str]) -> int:
    """Copy ``SRC`` to ``DST`` (and spill into ``--spill``); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="data set root with train.txt and val.txt")
    parser.add_argument("dst", type=Path, help="new folder for the copy")
    parser.add_argument("--spill", type=Path, help="new folder for the image folders that do not fit --max-mb")
    parser.add_argument("--max-mb", type=float, help="the most DST may hold, in MB (10^6 bytes), with --spill")
    args = parser.parse_args(argv)
    if (args.spill is None) != (args.max_mb is None):
        parser.error("--spill and --max-mb go together")
    try:
        for out in (args.dst, args.spill):
            if out is not None and out.exists():
                raise CopyError(f"{out}: exists; remove it or name a new folder")
        pairs = read_pairs(args.src)
        folders = copy(args.src, args.dst, pairs)
        print(f"{args.dst}: {sum(map(len, pairs.values()))} frames, {tree_bytes(args.dst) / 1e6:.1f} MB")
        if args.spill is not None:
            moved = spill(args.dst, folders, args.spill, int(args.max_mb * 1e6))
            for folder in moved:
                print(f"  {folder} -> {os.readlink(folder)}")
            print(
                f"{args.dst}: {tree_bytes(args.dst) / 1e6:.1f} MB, {args.spill}: "
                f"{tree_bytes(args.spill) / 1e6:.1f} MB ({len(moved)} image folders)"
            )
    except CopyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
