"""tools/fatbin.py and tools/cuda_bundle.py on small made-up libraries and bundles: which
images stay, that nothing else moves, and that split parts reassemble byte for byte."""

import os
import shutil
import struct
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import cuda_bundle  # noqa: E402
import fatbin  # noqa: E402

ELF, PTX = fatbin.KIND_ELF, fatbin.KIND_PTX
SM90A = fatbin.FLAG_COMPRESSED | fatbin.FLAG_ARCH_SPECIFIC


def entry(kind, arch, payload, flags=fatbin.FLAG_COMPRESSED):
    head = struct.pack(
        "<HHIQIIHHIIIQQQ", kind, 0x0101, 64, len(payload), len(payload), 0, 8, 1, arch, 0, 0, flags, 0, 0
    )
    return head + payload


def fat(*entries):
    body = b"".join(entries)
    return struct.pack("<IHHQ", fatbin.MAGIC, 1, 16, len(body)) + body


def elf_with(section: bytes) -> bytes:
    """A minimal ELF64 file: header, .shstrtab, .nv_fatbin, a trailer, section headers."""
    names = b"\0.shstrtab\0.nv_fatbin\0"
    strtab_at, fat_at = 64, 64 + 32
    trailer = b"after the section" + bytes(7)
    shoff = fat_at + len(section) + len(trailer)
    header = (
        b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, 3, 1)
    )

    def sh(name, off, size):
        return struct.pack("<IIQQQQIIQQ", name, 1, 0, 0, off, size, 0, 0, 8, 0)

    body = header + names.ljust(32, b"\0") + section + trailer
    return body + sh(0, 0, 0) + sh(1, strtab_at, len(names)) + sh(11, fat_at, len(section))


def payload(tag, size=48):
    return (tag.encode() * size)[:size]


@pytest.fixture
def library(tmp_path):
    section = (
        # An sm_90a cubin beside others: it alone stays.
        fat(entry(ELF, 80, payload("a80")), entry(ELF, 90, payload("a90"), SM90A), entry(PTX, 90, payload("p90")))
        + bytes(8)
        # No sm_90 cubin: the best PTX the driver could compile for sm_90 stays.
        + fat(entry(ELF, 80, payload("b80")), entry(PTX, 80, payload("q80")), entry(PTX, 90, payload("q90", 64)))
        # Nothing for sm_90: left as it is.
        + fat(entry(ELF, 120, payload("c120", 32)))
    )
    path = tmp_path / "libfake_cuda.so"
    path.write_bytes(elf_with(section))
    return path


def test_only_what_sm90_uses_stays_in_place_and_nothing_else_moves(library):
    original = library.read_bytes()
    before = fatbin.summary(original)
    assert before == {
        "compute_80": (1, 48),
        "compute_90": (2, 112),
        "sm_120": (1, 32),
        "sm_80": (2, 96),
        "sm_90a": (1, 48),
    }
    stats = fatbin.keep_arch(library, 90)
    thinned = library.read_bytes()
    assert len(thinned) == len(original)
    assert stats["fatbins"] == 3 and stats["kept_entries"] == 3 and stats["removed_entries"] == 4
    assert (stats["fatbins_with_target_cubin"], stats["fatbins_without_target_cubin"]) == (1, 2)
    assert fatbin.summary(thinned) == {"compute_90": (1, 64), "sm_120": (1, 32), "sm_90a": (1, 48)}
    assert fatbin.check_kept(original, thinned, 90) == 3
    # Each fat binary still starts where it did; the removed images' bytes are gone.
    starts = sorted({e.fatbin_offset for e in fatbin.entries(original)})
    assert starts == sorted({e.fatbin_offset for e in fatbin.entries(thinned)})
    assert b"a80" not in thinned and b"p90" not in thinned and b"q80" not in thinned
    assert thinned.endswith(original[-64 * 3 - 24 :])


def test_a_changed_kept_image_or_a_broken_section_is_reported(library):
    original = library.read_bytes()
    fatbin.keep_arch(library, 90)
    broken = bytearray(library.read_bytes())
    at = broken.index(b"a90")
    broken[at] ^= 1
    with pytest.raises(fatbin.FatbinError, match="sm_90a changed"):
        fatbin.check_kept(original, bytes(broken), 90)
    garbage = bytearray(original)
    off, _ = fatbin.elf_section(original, ".nv_fatbin")
    garbage[off : off + 4] = b"junk"
    with pytest.raises(fatbin.FatbinError, match="no fat binary header"):
        fatbin.entries(bytes(garbage))
    with pytest.raises(fatbin.FatbinError, match="not a 64-bit"):
        fatbin.entries(b"#!/bin/sh\n" + bytes(100))


@pytest.mark.skipif(shutil.which("xz") is None, reason="needs xz")
def test_split_parts_reassemble_byte_for_byte_and_a_bad_part_is_named(tmp_path, capsys):
    stage, parts, out = tmp_path / "stage", tmp_path / "parts", tmp_path / "out"
    stage.mkdir()
    parts.mkdir()
    for i, name in enumerate(cuda_bundle.MEMBERS):
        (stage / name).write_bytes(os.urandom(20_000 + i))
        (stage / name).chmod(0o755)
    archive = tmp_path / cuda_bundle.ARCHIVE
    cuda_bundle.pack(stage, archive, fast=True)
    manifest = cuda_bundle.finish(stage, archive, parts, 30_000, {"bundle": "test"})
    sizes = [p["size"] for p in manifest["parts"]]
    assert len(sizes) >= 3 and max(sizes) <= 30_000 and sum(sizes) == archive.stat().st_size
    printed = capsys.readouterr().out
    assert all(p["sha256"] in printed for p in manifest["parts"] + manifest["files"])
    args = ["reassemble", "--parts", str(parts), "--to", str(out), "--compare-to", str(stage)]
    assert cuda_bundle.main(args) == 0
    for name in cuda_bundle.MEMBERS:
        assert (out / name).read_bytes() == (stage / name).read_bytes()
        assert os.access(out / name, os.X_OK)
    # The first part alone: the files wholly inside it, checked; the cut one left out.
    rest = [parts / p["name"] for p in manifest["parts"][1:]]
    for f in rest:
        f.rename(f.with_name(f.name + ".away"))
    first = tmp_path / "first"
    assert cuda_bundle.main(["reassemble", "--parts", str(parts), "--to", str(first), "--partial"]) == 0
    assert sorted(p.name for p in first.iterdir()) == ["run-probe.sh"]
    assert (first / "run-probe.sh").read_bytes() == (stage / "run-probe.sh").read_bytes()
    with pytest.raises(SystemExit, match=r"part2of\d+: missing"):
        cuda_bundle.main(args)
    for f in rest:
        f.with_name(f.name + ".away").rename(f)
    second = parts / manifest["parts"][1]["name"]
    data = bytearray(second.read_bytes())
    data[100] ^= 0xFF
    second.write_bytes(bytes(data))
    with pytest.raises(SystemExit, match=r"part2of\d+: size or SHA-256 differs"):
        cuda_bundle.main(args)
    second.unlink()
    with pytest.raises(SystemExit, match=r"part2of\d+: missing"):
        cuda_bundle.main(args)
