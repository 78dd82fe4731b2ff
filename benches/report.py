#!/usr/bin/env python3
"""Write `make bench`'s measurements into docs/PERFORMANCE.md and print the comparison.

Reads the JSON reports of `foramen bench` and `benches/python_baseline.py` and
criterion's estimates (target/criterion), and replaces the part of docs/PERFORMANCE.md
between `<!-- bench:start -->` and `<!-- bench:end -->`; the hand-written rest of the
file stays as it is.

    python benches/report.py --foramen out/bench/foramen.json --python out/bench/python.json \\
        [--criterion target/criterion] [--doc docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import date
from pathlib import Path

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
STAGES = ("decode", "preprocess", "model", "postprocess", "composite", "encode", "end_to_end")


def cpu_name() -> str:
    """The processor's model name (Linux), else the platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def criterion_rows(root: Path) -> list[tuple[str, float]]:
    """(benchmark id, mean in ms) for every criterion benchmark under ``root``."""
    rows = []
    for est in sorted(root.glob("**/new/estimates.json")):
        bench_dir = est.parent.parent
        name = str(bench_dir.relative_to(root))
        mean_ns = json.loads(est.read_text())["mean"]["point_estimate"]
        rows.append((name, mean_ns / 1e6))
    return rows


def section(
    fo: dict, py: dict, crit: list[tuple[str, float]], h264: dict | None = None, realtime: dict | None = None
) -> str:
    """The generated Markdown."""
    ratio = fo["throughput_fps"] / py["throughput_fps"]
    w, h = fo["frame_size"]
    lines = [
        f"Measured {date.today().isoformat()} on {cpu_name()}, {os.cpu_count()} cores, "
        f"ONNX Runtime CPU provider; input `{fo['input']}` ({w}x{h}, {fo['frames']} frames), "
        f"model `{Path(fo['model']).name}` ({fo['model_input'][0]}x{fo['model_input'][1]} input); "
        f"both write `{fo.get('codec', '?')}` video (the baseline's OpenCV cannot write H.264).",
        "",
        "| | Foramen (`foramen bench`) | Python baseline | ratio |",
        "| --- | --- | --- | --- |",
        f"| throughput (frames/s) | {fo['throughput_fps']:.1f} | {py['throughput_fps']:.1f} | **{ratio:.2f}x** |",
        f"| bare model, median (ms) | {fo['bare_model']['p50_ms']:.2f} | {py['bare_model']['p50_ms']:.2f} | |",
        f"| efficiency (throughput x bare model) | {fo['efficiency']:.2f} | {py['efficiency']:.2f} | |",
        f"| peak RSS (MiB) | {fo.get('peak_rss_mib') or 0:.0f} | {py.get('peak_rss_mib') or 0:.0f} | |",
    ]
    alloc = fo.get("steady_state_rust_allocations")
    if alloc:
        lines.append(
            f"| Rust heap allocations per frame, warm ({alloc['frames']} frames) | "
            f"{alloc['allocations_per_frame']:.1f} ({alloc['bytes_per_frame']:.0f} bytes); the ONNX Runtime "
            f"call alone makes {alloc.get('model_call_allocations_per_frame', 0):.1f} | n/a | |"
        )
    if fo.get("peak_rust_heap_mib") is not None:
        lines.append(f"| peak heap held through Rust's allocator (MiB) | {fo['peak_rust_heap_mib']:.0f} | n/a | |")
    lines += [
        "",
        "Per-stage wall time per frame, ms, p50 / p90 / p99 / max. Foramen's stages run on",
        "four threads at once (decode, segment, blend, encode), so on 2 cores each stage's",
        "wall time includes waiting for a core; the baseline runs them one after another.",
        "",
        "| stage | Foramen | Python baseline |",
        "| --- | --- | --- |",
    ]

    def fmt(s):
        return "-" if not s else f"{s['p50_ms']:.1f} / {s['p90_ms']:.1f} / {s['p99_ms']:.1f} / {s['max_ms']:.1f}"

    for stage in STAGES:
        a, b = fo["stages"].get(stage), py["stages"].get(stage)
        lines.append(f"| {stage} | {fmt(a)} | {fmt(b)} |")
    if h264:
        lines += [
            "",
            f"Foramen writing its own default, H.264 (x264): {h264['throughput_fps']:.1f} frames/s "
            f"({h264['throughput_fps'] / py['throughput_fps']:.2f}x the baseline's MPEG-4 loop), encode p50 "
            f"{h264['stages']['encode']['p50_ms']:.1f} ms.",
        ]
    if realtime:
        v, a = realtime["video_latency"], realtime["annotation_latency"]
        lines += [
            "",
            f"Paced at the clip's {realtime['source_fps']:.0f} frames/s through the live path "
            f"(`foramen bench --realtime`, no window): {realtime['frames']} frames, "
            f"{100 * realtime['annotated_fraction']:.0f} % annotated; video path (capture to ready for display) "
            f"p50 {v['p50_ms']:.1f} / p99 {v['p99_ms']:.1f} ms; annotation (capture to mask ready) "
            f"p50 {a['p50_ms']:.1f} / p99 {a['p99_ms']:.1f} ms.",
        ]
    if crit:
        lines += [
            "",
            "Criterion micro-benchmarks (`cargo bench --bench stages`, the last run on this machine),",
            "one thread, mean:",
            "",
            "| benchmark | mean (ms) |",
            "| --- | --- |",
        ]
        lines += [f"| `{name}` | {ms:.3f} |" for name, ms in crit]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Writes the reports' section of `--doc` and prints the comparison; 1 on a bad report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--foramen", type=Path, required=True)
    parser.add_argument("--python", type=Path, required=True)
    parser.add_argument("--foramen-h264", type=Path, help="foramen bench --codec h264 report")
    parser.add_argument("--realtime", type=Path, help="foramen bench --realtime report")
    parser.add_argument("--criterion", type=Path, default=Path("target/criterion"))
    parser.add_argument("--doc", type=Path, default=Path("docs/PERFORMANCE.md"))
    args = parser.parse_args(argv)
    try:
        fo = json.loads(args.foramen.read_text())
        py = json.loads(args.python.read_text())
    except (OSError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    extra = {}
    for key, path in (("h264", args.foramen_h264), ("realtime", args.realtime)):
        if path is not None:
            try:
                extra[key] = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
    text = section(fo, py, criterion_rows(args.criterion) if args.criterion.is_dir() else [], **extra)
    doc = args.doc.read_text() if args.doc.exists() else f"# Performance\n\n{START}\n{END}\n"
    if START not in doc or END not in doc:
        print(f"error: {args.doc}: no {START} ... {END} markers", file=sys.stderr)
        return 1
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    args.doc.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    ratio = fo["throughput_fps"] / py["throughput_fps"]
    print(
        f"foramen {fo['throughput_fps']:.1f} frames/s, python baseline {py['throughput_fps']:.1f} frames/s: "
        f"{ratio:.2f}x; efficiency {fo['efficiency']:.2f}; wrote {args.doc}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
