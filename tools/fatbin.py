"""CUDA fat binaries inside an ELF shared library: list them, keep one architecture.

A CUDA library's `.nv_fatbin` section holds a run of fat binaries, one per compiled
source, each a 16-byte header (magic 0xBA55ED50, version, header size, size of what
follows) then entries: a header (kind 1 = PTX, 2 = ELF cubin; the SM architecture as
e.g. 90; flags, among them 0x8000 compressed and 0x100000 arch-specific `sm_90a`) and
its payload. The driver reads the headers to choose the one image that fits the GPU and
reads only that payload.

`keep_arch(path, 90)` keeps what the H100/H200 (sm_90) uses: in every fat binary that
has an sm_90 cubin, the other entries (other architectures' cubins, and PTX, which the
driver compiles only when no cubin fits) are removed in place: the kept entries move to
the front of the fat binary, its size field shrinks and the rest of its old extent
becomes zeros. Each fat binary still starts where it did (the library's registration
code points at those starts), the file keeps its length and every offset outside the
section, and the zeros compress to nothing. The fat binaries stay well-formed, so
`cuobjdump --list-elf` lists (and decompresses) what is left; zeroing payloads under
unchanged headers would leave entries that no tool can read. A fat binary without an
sm_90 cubin keeps its best PTX for the target (the driver would compile it) or, with
none, is left as it is: nothing in it can run on the target either way.

Run as a script: `python3 tools/fatbin.py LIB.so` lists what is left (kind, arch and
bytes, zeroed payloads counted apart).
"""

from __future__ import annotations

import struct
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MAGIC = 0xBA55ED50
FATBIN_HEADER = struct.Struct("<IHHQ")
# kind, version, header size, payload size, compressed size, (unknown), minor, major, arch
ENTRY_HEADER = struct.Struct("<HHIQIIHHI")
KIND_PTX = 1
KIND_ELF = 2
FLAG_COMPRESSED = 0x8000
FLAG_ARCH_SPECIFIC = 0x100000


class FatbinError(ValueError):
    """The file is not an ELF with a well-formed `.nv_fatbin` section."""


@dataclass(frozen=True)
class Entry:
    """One image in a fat binary."""

    fatbin: int  # index of its fat binary in the section
    fatbin_offset: int  # file offset of that fat binary's header
    offset: int  # file offset of the entry header
    payload_offset: int
    payload_size: int
    kind: int
    arch: int
    flags: int

    @property
    def name(self) -> str:
        """`sm_90a`, `sm_80`, `compute_90`: as cuobjdump names them."""
        prefix = "sm" if self.kind == KIND_ELF else "compute"
        suffix = "a" if self.flags & FLAG_ARCH_SPECIFIC else ""
        return f"{prefix}_{self.arch}{suffix}"


def elf_section(data: bytes | bytearray, wanted: str) -> tuple[int, int]:
    """(file offset, size) of the ELF64 little-endian section named `wanted`."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise FatbinError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i: int) -> tuple[int, int, int]:
        name, _, _, _, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size

    _, strtab, _ = header(shstrndx)
    for i in range(shnum):
        name, off, size = header(i)
        end = data.index(b"\0", strtab + name)
        if data[strtab + name : end].decode() == wanted:
            return off, size
    raise FatbinError(f"no {wanted} section")


def entries(data: bytes | bytearray) -> list[Entry]:
    """Every entry of every fat binary in the `.nv_fatbin` section."""
    off, size = elf_section(data, ".nv_fatbin")
    out: list[Entry] = []
    pos, end, index = off, off + size, 0
    while pos + FATBIN_HEADER.size <= end:
        magic, _, header_size, fat_size = FATBIN_HEADER.unpack_from(data, pos)
        if magic != MAGIC:
            # Fat binaries are 8-byte aligned; only zero padding may sit between them.
            if any(data[pos : pos + 8]):
                raise FatbinError(f"no fat binary header at offset {pos:#x}")
            pos += 8
            continue
        p, fat_end = pos + header_size, pos + header_size + fat_size
        while p < fat_end:
            kind, _, eh_size, payload, _, _, _, _, arch = ENTRY_HEADER.unpack_from(data, p)
            (flags,) = struct.unpack_from("<Q", data, p + 0x28)
            if kind not in (KIND_PTX, KIND_ELF) or p + eh_size + payload > fat_end:
                raise FatbinError(f"bad entry header at offset {p:#x} (kind {kind})")
            out.append(Entry(index, pos, p, p + eh_size, payload, kind, arch, flags))
            p += eh_size + payload
        pos, index = fat_end, index + 1
    return out


def keepers(group: list[Entry], arch: int) -> set[Entry]:
    """The entries of one fat binary that the target `arch` can use (see the module doc)."""
    cubins = {e for e in group if e.kind == KIND_ELF and e.arch == arch}
    if cubins:
        return cubins
    ptx = [e for e in group if e.kind == KIND_PTX and e.arch <= arch]
    if ptx:
        return {max(ptx, key=lambda e: e.arch)}
    return set(group)


def compact(data: bytearray, header_at: int, group: list[Entry], keep: set[Entry]) -> int:
    """Moves the kept entries of one fat binary to its front, zeroes the rest of its old
    extent and shrinks its size field; returns the bytes freed."""
    _, _, header_size, fat_size = FATBIN_HEADER.unpack_from(data, header_at)
    start = header_at + header_size
    kept = b"".join(bytes(data[e.offset : e.payload_offset + e.payload_size]) for e in group if e in keep)
    if len(kept) % 8:
        raise FatbinError(f"entries at {start:#x} are not 8-byte multiples")
    data[start : start + fat_size] = kept + bytes(fat_size - len(kept))
    struct.pack_into("<Q", data, header_at + 8, len(kept))
    return fat_size - len(kept)


def keep_arch(path: Path, arch: int) -> dict[str, int]:
    """Keeps, in place, only the images the `arch` GPU would use (see the module doc):
    each fat binary's kept entries move to its front, its size field shrinks, and the
    rest of its extent becomes zeros. Every fat binary starts where it did (the
    registration code points at those starts) and the file keeps its length."""
    data = bytearray(path.read_bytes())
    length = len(data)
    groups: dict[int, list[Entry]] = {}
    for e in entries(data):
        groups.setdefault(e.fatbin, []).append(e)
    stats = Counter()
    for group in groups.values():
        keep = keepers(group, arch)
        has_cubin = any(e.kind == KIND_ELF and e.arch == arch for e in group)
        stats["fatbins_with_target_cubin" if has_cubin else "fatbins_without_target_cubin"] += 1
        stats["kept_entries"] += len(keep)
        stats["removed_entries"] += len(group) - len(keep)
        stats["kept_payload_bytes"] += sum(e.payload_size for e in keep)
        if len(keep) < len(group):
            stats["zeroed_bytes"] += compact(data, group[0].fatbin_offset, group, keep)
    if len(data) != length:
        raise FatbinError("internal error: the file length changed")
    path.write_bytes(bytes(data))
    stats["fatbins"] = len(groups)
    return dict(stats)


def check_kept(original: bytes, thinned: bytes, arch: int) -> int:
    """Checks that `thinned` is `original` with exactly the images `arch` would not use
    removed: the same bytes outside `.nv_fatbin`, and in it, fat binary by fat binary,
    the kept entries byte for byte, then zeros. Returns the number of kept entries."""
    if len(original) != len(thinned):
        raise FatbinError(f"length changed: {len(original)} -> {len(thinned)}")
    off, size = elf_section(original, ".nv_fatbin")
    if original[:off] != thinned[:off] or original[off + size :] != thinned[off + size :]:
        raise FatbinError("bytes outside .nv_fatbin changed")
    before: dict[int, list[Entry]] = {}
    for e in entries(original):
        before.setdefault(e.fatbin_offset, []).append(e)
    after: dict[int, list[Entry]] = {}
    for e in entries(thinned):
        after.setdefault(e.fatbin_offset, []).append(e)
    if before.keys() != after.keys():
        raise FatbinError("fat binaries moved or vanished")
    count = 0
    for at, group in before.items():
        keep = [e for e in group if e in keepers(group, arch)]
        now = after[at]
        if [(e.kind, e.arch, e.flags) for e in keep] != [(e.kind, e.arch, e.flags) for e in now]:
            raise FatbinError(f"fat binary at {at:#x}: kept {[e.name for e in now]}, expected {[e.name for e in keep]}")
        for a, b in zip(keep, now):
            a_end, b_end = a.payload_offset + a.payload_size, b.payload_offset + b.payload_size
            if original[a.offset : a_end] != thinned[b.offset : b_end]:
                raise FatbinError(f"fat binary at {at:#x}: {a.name} changed")
        end = now[-1].payload_offset + now[-1].payload_size
        old_end = group[-1].payload_offset + group[-1].payload_size
        if any(thinned[end:old_end]):
            raise FatbinError(f"fat binary at {at:#x}: freed bytes are not zero")
        count += len(now)
    return count


def summary(data: bytes | bytearray) -> dict[str, tuple[int, int]]:
    """Per image name (`sm_90a`), how many entries the fat binaries list and their bytes."""
    out: dict[str, tuple[int, int]] = {}
    for e in entries(data):
        n, size = out.get(e.name, (0, 0))
        out[e.name] = (n + 1, size + e.payload_size)
    return dict(sorted(out.items()))


def main(argv: list[str]) -> int:
    """Lists the images in a library's .nv_fatbin."""
    if len(argv) != 1:
        print("usage: fatbin.py LIB.so   (lists the images in its .nv_fatbin)", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        table = summary(path.read_bytes())
    except (OSError, FatbinError) as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    print(f"{'image':<10} {'entries':>8} {'MB':>8}")
    for name, (n, size) in table.items():
        print(f"{name:<10} {n:>8} {size / 1e6:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
