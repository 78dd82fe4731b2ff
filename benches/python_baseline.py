#!/usr/bin/env python3
"""The straightforward Python loop Foramen is measured against (issue 7).

What a competent user writes instead of Foramen, after the PaddleSeg and OpenCV DNN
video demos: OpenCV reads a frame, NumPy/OpenCV preprocess it, onnxruntime runs the
model, OpenCV upsamples the class map, blends the class colours, draws the contours and
writes the video. Same model, same input, same output as `foramen bench`:

* preprocessing: RGB, resize to the model input (area filter, the anti-aliased resize
  the recipe trains with), x/scale then (x - mean) / std from the model's metadata;
* postprocessing: argmax over the logits;
* compositing: nearest-neighbour upsampling of the class map, each visible class (all
  but class 0) blended at the default opacity 0.45 where the pixel is brighter than the
  black level 8, its outline drawn 2 px wide;
* encoding: MPEG-4 Part 2 (`mp4v`) into an .mp4, as `foramen bench --codec mpeg4` writes
  (the OpenCV wheels for Python cannot write H.264, Foramen's default).

ONNX Runtime gets the same thread settings as Foramen's pipeline (intra-op threads =
cores, no spinning); OpenCV keeps its default threads.

    python benches/python_baseline.py assets/demo.mp4 --model models/lumbar-synth.onnx \\
        [--frames N] [--out out/bench/python.mp4] [--json out/bench/python.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

OPACITY = 0.45
BLACK_LEVEL = 8
CONTOUR_PX = 2


def stats(samples: list[float]) -> dict[str, float]:
    """Mean and nearest-rank percentiles (ms), as Foramen's LatencyStats computes them."""
    if not samples:
        return {"count": 0, "mean_ms": 0.0, "p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(samples)

    def pct(p: float) -> float:
        rank = int(np.ceil(p / 100.0 * len(ordered)))
        return ordered[min(max(rank, 1), len(ordered)) - 1]

    return {
        "count": len(ordered),
        "mean_ms": float(np.mean(ordered)),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": ordered[-1],
    }


def load_model(path: Path, threads: int) -> tuple[ort.InferenceSession, dict]:
    """The session and the model's Foramen metadata (input size, normalisation, classes)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if "foramen" not in meta:
        raise SystemExit(f"error: {path}: no 'foramen' metadata (not a Foramen model)")
    return session, json.loads(meta["foramen"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("--model", type=Path, default=Path("models/lumbar-synth.onnx"))
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (0 = all)")
    parser.add_argument("--out", type=Path, default=Path("out/bench/python.annotated.mp4"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ONNX Runtime intra-op threads")
    args = parser.parse_args(argv)

    session, meta = load_model(args.model, args.threads)
    spec = meta["input"]
    iw, ih = spec["width"], spec["height"]
    scale = float(spec.get("scale", 255.0))
    mean = np.array(spec["mean"], dtype=np.float32)
    std = np.array(spec["std"], dtype=np.float32)
    input_name = spec.get("name", session.get_inputs()[0].name)
    classes = meta["classes"]
    lut_bgr = np.zeros((256, 3), dtype=np.uint8)
    for c in classes:
        r, g, b = c["color"][:3]
        lut_bgr[c["index"]] = (b, g, r)
    visible = [c["index"] for c in classes if c["index"] != 0]

    cap = cv2.VideoCapture(str(args.input))
    if not cap.isOpened():
        print(f"error: {args.input}: cannot open", file=sys.stderr)
        return 1
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        print(f"error: {args.out}: cannot open for writing", file=sys.stderr)
        return 1

    # The model alone, on the first frame, as foramen bench measures it.
    ok, bgr = cap.read()
    if not ok:
        print(f"error: {args.input}: no frame", file=sys.stderr)
        return 1
    first = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (iw, ih), interpolation=cv2.INTER_AREA)
    x0 = ((first.astype(np.float32) / scale - mean) / std).transpose(2, 0, 1)[None].copy()
    for _ in range(10):
        session.run(None, {input_name: x0})
    bare = []
    for _ in range(100):
        t = time.perf_counter()
        session.run(None, {input_name: x0})
        bare.append((time.perf_counter() - t) * 1000)
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    times: dict[str, list[float]] = {
        k: [] for k in ("decode", "preprocess", "model", "postprocess", "composite", "encode", "end_to_end")
    }
    frames = 0
    start = time.perf_counter()
    while args.frames <= 0 or frames < args.frames:
        t0 = time.perf_counter()
        ok, bgr = cap.read()
        if not ok:
            break
        t1 = time.perf_counter()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, (iw, ih), interpolation=cv2.INTER_AREA)
        x = ((small.astype(np.float32) / scale - mean) / std).transpose(2, 0, 1)[None]
        x = np.ascontiguousarray(x)
        t2 = time.perf_counter()
        logits = session.run(None, {input_name: x})[0]
        t3 = time.perf_counter()
        classes_small = logits[0].argmax(axis=0).astype(np.uint8)
        t4 = time.perf_counter()
        cls = cv2.resize(classes_small, (width, height), interpolation=cv2.INTER_NEAREST)
        colour = lut_bgr[cls]
        blended = cv2.addWeighted(bgr, 1.0 - OPACITY, colour, OPACITY, 0.0)
        draw = (cls != 0) & (bgr.max(axis=2) >= BLACK_LEVEL)
        out = np.where(draw[..., None], blended, bgr)
        for c in visible:
            contours, _ = cv2.findContours((cls == c).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            if contours:
                cv2.drawContours(out, contours, -1, tuple(int(v) for v in lut_bgr[c]), CONTOUR_PX)
        t5 = time.perf_counter()
        writer.write(out)
        t6 = time.perf_counter()
        for key, a, b in (
            ("decode", t0, t1),
            ("preprocess", t1, t2),
            ("model", t2, t3),
            ("postprocess", t3, t4),
            ("composite", t4, t5),
            ("encode", t5, t6),
            ("end_to_end", t0, t6),
        ):
            times[key].append((b - a) * 1000)
        frames += 1
    seconds = time.perf_counter() - start
    writer.release()
    cap.release()
    if frames == 0:
        print(f"error: {args.input}: no frame processed", file=sys.stderr)
        return 1

    fps_out = frames / seconds
    bare_p50 = stats(bare)["p50_ms"]
    report = {
        "tool": "python_baseline",
        "input": str(args.input),
        "frame_size": [width, height],
        "model": str(args.model),
        "model_input": [iw, ih],
        "frames": frames,
        "seconds": seconds,
        "throughput_fps": fps_out,
        "bare_model": stats(bare),
        "efficiency": fps_out * bare_p50 / 1000,
        "stages": {k: stats(v) for k, v in times.items()},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "versions": {
            "python": sys.version.split()[0],
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "onnxruntime": ort.__version__,
        },
        "output": str(args.out),
    }
    print(f"python baseline: {frames} frames of {width}x{height} from {args.input} through {args.model}")
    print(f"throughput {fps_out:.1f} frames/s; bare model {bare_p50:.2f} ms; efficiency {report['efficiency']:.2f}")
    print(f"{'stage (ms)':<12} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for key, s in report["stages"].items():
        print(f"{key:<12} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['max_ms']:>8.2f}")
    print(f"peak RSS {report['peak_rss_mib']:.1f} MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"report: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
