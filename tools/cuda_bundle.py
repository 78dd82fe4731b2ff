"""The CUDA bundle: what a lean GPU machine needs to run `foramen-probe` on CUDA.

`build` (here, `make cuda-bundle`): downloads onnxruntime-gpu 1.31.1 from PyPI, takes
`libonnxruntime.so.1.31.1`, `libonnxruntime_providers_shared.so` and
`libonnxruntime_providers_cuda.so` out of the wheel, keeps only the sm_90 (H100, H200)
images of the CUDA provider's fat binaries (tools/fatbin.py: checked against the wheel's
library byte for byte, and listed by `cuobjdump --list-elf` when there is one), packs
them with the stripped `foramen-probe` and `run-probe.sh` into one tar.xz and splits it
into parts under 40 MB, with a manifest of sizes and SHA-256s.

`reassemble` (on the GPU machine): checks each part against the manifest, joins them,
checks the archive, unpacks it and checks every file; `--compare-to DIR` also compares
each file byte for byte with DIR's (the rehearsal here compares with what was packed).

    python3 tools/cuda_bundle.py build [--out .cuda-bundle] [--probe target/release/foramen-probe]
    python3 tools/cuda_bundle.py reassemble --parts .cuda-bundle/parts --to /tmp/probe

docs/GPU.md gives the device calls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import math
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fatbin  # noqa: E402  (beside this file, not an installed package)

REPO = Path(__file__).resolve().parent.parent
ORT_VERSION = "1.31.1"
# Only to check the thinned library with NVIDIA's own fat binary reader.
CUOBJDUMP_VERSION = "13.5.37"
ARCH = 90
LIBS = (f"libonnxruntime.so.{ORT_VERSION}", "libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so")
# Small files first: a truncated archive still yields them.
# The WebGPU plugin provider (onnxruntime-ep-webgpu, the venv's), beside the libraries:
# foramen-segment looks for it there too, for `--provider webgpu` on the GPU's Vulkan.
WEBGPU_LIB = "libonnxruntime_providers_webgpu.so"
MEMBERS = ("run-probe.sh", "foramen-probe", *LIBS, WEBGPU_LIB)
ARCHIVE = "foramen-probe-cuda.tar.xz"
MANIFEST = "manifest.json"
PART_MAX = 40_000_000
# `xz -9e --lzma2=dict=512MiB` would reset the preset to 6 (xz -vv shows nice=64,
# depth=0): a filter option resets all of its options to the default preset. This is
# preset 9e with the 512 MiB dictionary, meant by that line. One thread: one block,
# the best ratio (about 5.4 GiB of memory to compress, 513 MiB to decompress).
XZ_BEST = ["xz", "-T1", "--lzma2=preset=9e,dict=512MiB", "-c"]
XZ_FAST = ["xz", "-T1", "-1", "-c"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def say(msg: str) -> None:
    """Prints progress at once (the build runs for minutes)."""
    print(msg, flush=True)


def sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def described(path: Path) -> dict[str, object]:
    """The manifest entry of a file: name, size and SHA-256."""
    return {"name": path.name, "size": path.stat().st_size, "sha256": sha256(path)}


def pip_download(spec: str, dest: Path, python_version: str | None) -> Path:
    """The wheel of `spec` (`name==version`) in `dest`, downloaded unless already there."""
    name, version = spec.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(dest.glob(pattern))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
        cmd += [a for p in PLATFORMS for a in ("--platform", p)]
        if python_version:
            cmd += ["--python-version", python_version, "--implementation", "cp"]
        subprocess.run([*cmd, spec], check=True)
        found = sorted(dest.glob(pattern))
    if not found:
        raise SystemExit(f"pip download {spec}: no wheel named {pattern} in {dest}")
    return found[-1]


def extract_libs(wheel: Path, stage: Path) -> None:
    """The three libraries of the wheel's onnxruntime/capi into `stage`."""
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for lib in LIBS:
            member = f"onnxruntime/capi/{lib}"
            if member not in names:
                raise SystemExit(f"{wheel.name}: no {member}")
            target = stage / lib
            with z.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            target.chmod(0o755)


def cuobjdump_images(tool: Path | None, lib: Path) -> dict[str, int] | None:
    """Image name -> count as `cuobjdump --list-elf --list-ptx` lists them (None without it)."""
    if tool is None:
        return None
    out = subprocess.run([str(tool), "--list-elf", "--list-ptx", str(lib)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cuobjdump cannot read {lib}: {out.stderr.strip()}")
    counts: dict[str, int] = {}
    for line in out.stdout.splitlines():
        # "ELF file    1: libonnxruntime_providers_cuda.1.sm_90a.cubin"
        image = line.rsplit(".", 2)[-2] if line.startswith(("ELF file", "PTX file")) else None
        if image:
            counts[image] = counts.get(image, 0) + 1
    return dict(sorted(counts.items()))


def find_cuobjdump(download: Path) -> Path | None:
    """cuobjdump on PATH, else from the nvidia-cuda-cuobjdump wheel (290 kB), else None."""
    on_path = shutil.which("cuobjdump")
    if on_path:
        return Path(on_path)
    try:
        wheel = pip_download(f"nvidia-cuda-cuobjdump=={CUOBJDUMP_VERSION}", download, None)
    except subprocess.CalledProcessError:
        return None
    tool = download / "cuobjdump"
    with zipfile.ZipFile(wheel) as z:
        member = next((n for n in z.namelist() if n.endswith("/bin/cuobjdump")), None)
        if member is None:
            return None
        tool.write_bytes(z.read(member))
    tool.chmod(0o755)
    return tool


def thin_cuda_provider(stage: Path, cuobjdump: Path | None) -> dict[str, object]:
    """Keeps the sm_90 images of the CUDA provider in place and checks the result."""
    lib = stage / "libonnxruntime_providers_cuda.so"
    original = lib.read_bytes()
    before = fatbin.summary(original)
    stats = fatbin.keep_arch(lib, ARCH)
    thinned = lib.read_bytes()
    kept = fatbin.check_kept(original, thinned, ARCH)
    after = fatbin.summary(thinned)
    say(f"fat binaries: {stats['fatbins']}, images before: " + ", ".join(f"{k} {n}" for k, (n, _) in before.items()))
    say(f"kept {kept} images: " + ", ".join(f"{k} {n} ({b / 1e6:.1f} MB)" for k, (n, b) in after.items()))
    say(f"zeroed {stats['zeroed_bytes'] / 1e6:.1f} MB in place; file length unchanged ({len(thinned)} bytes)")
    listed = cuobjdump_images(cuobjdump, lib)
    ours = {k: n for k, (n, _) in after.items()}
    if listed is None:
        say("cuobjdump: not available; the listing above is tools/fatbin.py's")
    elif listed != ours:
        raise SystemExit(f"cuobjdump lists {listed}, tools/fatbin.py {ours}")
    else:
        say(f"cuobjdump --list-elf --list-ptx ({cuobjdump}): {listed}, the same")
    return {"arch": f"sm_{ARCH}", "images_before": before, "images_after": after, "cuobjdump": listed, **stats}


def stage_probe(probe: Path, stage: Path) -> str:
    """Copies `foramen-probe` (stripped if it is not) and `run-probe.sh`; returns the
    highest GLIBC symbol version the probe needs."""
    if not probe.is_file():
        raise SystemExit(f"--probe {probe}: not built (cargo build --release -p foramen-segment --bin foramen-probe)")
    target = stage / "foramen-probe"
    shutil.copy2(probe, target)
    try:
        fatbin.elf_section(target.read_bytes(), ".symtab")
        subprocess.run(["strip", str(target)], check=True)
        say(f"{probe}: had a symbol table; stripped the bundle's copy")
    except fatbin.FatbinError:
        pass  # no .symtab: stripped already
    shutil.copy2(REPO / "tools/run-probe.sh", stage / "run-probe.sh")
    (stage / "run-probe.sh").chmod(0o755)
    dyn = subprocess.run(["objdump", "-T", str(target)], capture_output=True, text=True, check=True).stdout
    tags = [w[len("(GLIBC_") : -1] for w in dyn.split() if w.startswith("(GLIBC_")]
    versions = {tuple(int(x) for x in t.split(".")) for t in tags}
    return "GLIBC_" + ".".join(map(str, max(versions)))


def pack(stage: Path, archive: Path, fast: bool) -> None:
    """tar (fixed order, owners and times: the same inputs give the same bytes) | xz."""
    tar = ["tar", "-C", str(stage), "-cf", "-", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", *MEMBERS]
    xz = XZ_FAST if fast else XZ_BEST
    say(f"packing: {' '.join(tar[:3])} ... | {' '.join(xz)} > {archive}")
    with archive.open("wb") as out:
        t = subprocess.Popen(tar, stdout=subprocess.PIPE)
        x = subprocess.Popen(xz, stdin=t.stdout, stdout=out)
        if t.stdout is not None:
            t.stdout.close()  # only xz holds the pipe now: tar stops if xz does
        if x.wait() != 0 or t.wait() != 0:
            raise SystemExit(f"packing {archive} failed (tar {t.returncode}, xz {x.returncode})")


def split(archive: Path, parts: Path, part_max: int) -> list[Path]:
    """Equal parts, each at most `part_max` bytes (equal so that each device call
    carries as little as it can)."""
    size = archive.stat().st_size
    count = max(1, math.ceil(size / part_max))
    each = math.ceil(size / count)
    out = []
    with archive.open("rb") as f:
        for i in range(count):
            p = parts / f"{archive.name}.part{i + 1}of{count}"
            p.write_bytes(f.read(each))
            out.append(p)
    return out


def finish(stage: Path, archive: Path, parts: Path, part_max: int, about: dict[str, object]) -> dict:
    """Splits `archive` into `parts`, writes the manifest there and prints sizes and
    SHA-256s of everything; returns the manifest."""
    part_files = split(archive, parts, part_max)
    manifest = {
        **about,
        "files": [described(stage / m) for m in MEMBERS],
        "archive": described(archive),
        "parts": [described(p) for p in part_files],
    }
    (parts / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    for kind in ("files", "archive", "parts"):
        rows = manifest[kind] if kind != "archive" else [manifest["archive"]]
        for r in rows:
            say(f"{kind:<8} {r['size']:>11}  {r['sha256']}  {r['name']}")
    total = sum(r["size"] for r in manifest["parts"])
    say(f"{len(part_files)} parts, {total} bytes ({total / 1e6:.1f} MB) in {parts}, manifest {parts / MANIFEST}")
    return manifest


def stage_webgpu(stage: Path) -> None:
    """Copies the WebGPU plugin provider from the venv's onnxruntime_ep_webgpu package."""
    found = sorted((REPO / ".venv/lib").glob(f"python3*/site-packages/onnxruntime_ep_webgpu/{WEBGPU_LIB}"))
    if not found:
        raise SystemExit(f"{WEBGPU_LIB} not in .venv: make venv installs onnxruntime-ep-webgpu")
    shutil.copy2(found[-1], stage / WEBGPU_LIB)
    say(f"WebGPU plugin: {found[-1]} ({found[-1].stat().st_size / 1e6:.1f} MB)")


def build(args: argparse.Namespace) -> int:
    """`build`: download, thin, pack and split the bundle into `--out`."""
    out: Path = args.out
    download, stage, parts = out / "download", out / "stage", out / "parts"
    for d in (stage, parts):
        shutil.rmtree(d, ignore_errors=True)
    for d in (download, stage, parts):
        d.mkdir(parents=True, exist_ok=True)
    wheel = pip_download(f"onnxruntime-gpu=={ORT_VERSION}", download, "3.11")
    say(f"wheel: {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB)")
    extract_libs(wheel, stage)
    fat = thin_cuda_provider(stage, find_cuobjdump(download))
    glibc = stage_probe(args.probe, stage)
    say(f"foramen-probe needs at most {glibc}")
    stage_webgpu(stage)
    archive = out / ARCHIVE
    pack(stage, archive, args.fast)
    about = {
        "bundle": "foramen-probe on CUDA (docs/GPU.md)",
        "onnxruntime_gpu": ORT_VERSION,
        "wheel": described(wheel),
        "fatbin": fat,
        "probe_glibc_max": glibc,
        "compression": " ".join(XZ_FAST if args.fast else XZ_BEST),
    }
    finish(stage, archive, parts, args.part_max, about)
    return 0


def check_parts(manifest: dict, parts_dir: Path, leading_only: bool) -> list[Path]:
    """The parts in order, each checked against the manifest. With `leading_only`, those
    present from the first on (a missing one ends the list); else all, or an error."""
    found = []
    for p in manifest["parts"]:
        f = parts_dir / p["name"]
        if not f.is_file():
            if leading_only and found:
                break
            raise SystemExit(f"{f}: missing (each device call carries some parts: see docs/GPU.md)")
        if f.stat().st_size != p["size"] or sha256(f) != p["sha256"]:
            raise SystemExit(f"{f}: size or SHA-256 differs from {MANIFEST}")
        found.append(f)
    return found


def unpack(archive: Path, to: Path, partial: bool) -> None:
    """Unpacks the tar.xz; `partial`: as far as a cut archive goes (a cut member stays
    behind and fails its SHA-256 check)."""
    if not partial:
        with tarfile.open(archive, "r:xz") as t:
            t.extractall(to, filter="data")
        return
    try:
        with tarfile.open(archive, "r|xz") as t:
            for member in t:
                t.extract(member, to, filter="data")
    except (tarfile.TarError, EOFError, lzma.LZMAError):
        pass  # the end of the parts at hand


def reassemble(args: argparse.Namespace) -> int:
    """`reassemble`: check the parts against the manifest and unpack them into `--to`."""
    parts_dir: Path = args.parts
    manifest = json.loads((parts_dir / MANIFEST).read_text())
    parts = check_parts(manifest, parts_dir, args.partial)
    to: Path = args.to
    to.mkdir(parents=True, exist_ok=True)
    archive = to / manifest["archive"]["name"]
    with archive.open("wb") as out:
        for f in parts:
            with f.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    whole = len(parts) == len(manifest["parts"])
    if whole and sha256(archive) != manifest["archive"]["sha256"]:
        raise SystemExit(f"{archive}: SHA-256 differs from {MANIFEST}")
    unpack(archive, to, partial=not whole)
    archive.unlink()
    complete = []
    for f in manifest["files"]:
        got = to / f["name"]
        if got.is_file() and got.stat().st_size == f["size"] and sha256(got) == f["sha256"]:
            complete.append(f["name"])
        elif whole:
            raise SystemExit(f"{got}: SHA-256 differs from {MANIFEST}")
        else:
            got.unlink(missing_ok=True)  # cut off with the missing parts
            continue
        if args.compare_to and (args.compare_to / f["name"]).read_bytes() != got.read_bytes():
            raise SystemExit(f"{got}: differs from {args.compare_to / f['name']}")
    same = f", byte for byte equal to {args.compare_to}" if args.compare_to else ""
    n, total = len(parts), len(manifest["parts"])
    say(f"reassembled {n} of {total} parts into {to}: {len(complete)} files, SHA-256 checked{same}")
    say("  " + " ".join(complete))
    return 0


def table(args: argparse.Namespace) -> int:
    """One Markdown row per foramen-probe JSON report: the numbers docs/GPU.md's table takes."""

    def series(d: dict) -> str:
        return f"{d['p50']:.2f} / {d['p90']:.2f} / {d['p99']:.2f}"

    say(
        "| model | provider used | session load ms | model only p50 / p90 / p99 ms "
        "| model, I/O binding p50 / p90 / p99 ms | CUDA graphs | segment() p50 / p90 / p99 ms "
        "| max abs prob diff vs CPU | input | runs |"
    )
    say("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in args.reports:
        d = json.loads(Path(path).read_text())
        cmp = d.get("compare_cpu") or {}
        diff = f"{cmp['max_abs_prob_diff']:.2e} ({cmp['class_agreement']:.4%} same class)" if cmp else "-"
        used = d["provider_used"] + (f" (asked {d['provider_requested']})" if d["fallback_reason"] else "")
        size = f"{d['input']['width']}x{d['input']['height']}"
        bound = series(d["model_bound_ms"]) if "model_bound_ms" in d else "-"
        say(
            f"| {Path(d['model']).name} | {used} | {d['session_load_ms']:.0f} | {series(d['model_only_ms'])} "
            f"| {bound} | {'on' if d.get('cuda_graph') else 'off'} "
            f"| {series(d['segment_ms'])} | {diff} | {size} | {d['warmup']}+{d['runs']} |"
        )
    return 0


def main(argv: list[str]) -> int:
    """The CLI: `build` or `reassemble`."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download, thin, pack and split (here)")
    b.add_argument("--out", type=Path, default=REPO / ".cuda-bundle")
    b.add_argument("--probe", type=Path, default=REPO / "target/release/foramen-probe")
    b.add_argument("--part-max", type=int, default=PART_MAX, help="bytes per part at most (default 40 MB)")
    b.add_argument("--fast", action="store_true", help="xz -1 instead of 9e: to try the script, not to ship")
    r = sub.add_parser("reassemble", help="check, join and unpack the parts (on the GPU machine)")
    r.add_argument("--parts", type=Path, default=REPO / ".cuda-bundle/parts")
    r.add_argument("--to", type=Path, required=True)
    r.add_argument("--compare-to", type=Path, help="also compare each file with this folder's")
    r.add_argument(
        "--partial",
        action="store_true",
        help="unpack the files wholly inside the leading parts present (the first device call)",
    )
    t = sub.add_parser("table", help="Markdown rows from foramen-probe JSON reports")
    t.add_argument("reports", nargs="+", type=Path)
    args = ap.parse_args(argv)
    return {"build": build, "reassemble": reassemble, "table": table}[args.command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
