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
from dataclasses import dataclass
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


@dataclass
class Pipeline:
    """The per-frame work and what it needs from the model's metadata: the input name,
    size and normalisation, and the class colours (BGR) with the classes that are drawn."""

    session: ort.InferenceSession
    input_name: str
    input_size: tuple[int, int]
    scale: float
    mean: np.ndarray
    std: np.ndarray
    lut_bgr: np.ndarray
    visible: list[int]

    @classmethod
    def from_model(cls, session: ort.InferenceSession, meta: dict) -> Pipeline:
        """The pipeline of a model loaded by :func:`load_model`."""
        spec = meta["input"]
        classes = meta["classes"]
        lut_bgr = np.zeros((256, 3), dtype=np.uint8)
        for c in classes:
            r, g, b = c["color"][:3]
            lut_bgr[c["index"]] = (b, g, r)
        return cls(
            session=session,
            input_name=spec.get("name", session.get_inputs()[0].name),
            input_size=(spec["width"], spec["height"]),
            scale=float(spec.get("scale", 255.0)),
            mean=np.array(spec["mean"], dtype=np.float32),
            std=np.array(spec["std"], dtype=np.float32),
            lut_bgr=lut_bgr,
            visible=[c["index"] for c in classes if c["index"] != 0],
        )

    def preprocess(self, bgr: np.ndarray) -> np.ndarray:
        """RGB, area resize to the model input, x/scale then (x - mean) / std, as NCHW."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, self.input_size, interpolation=cv2.INTER_AREA)
        x = ((small.astype(np.float32) / self.scale - self.mean) / self.std).transpose(2, 0, 1)[None]
        return np.ascontiguousarray(x)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The model's logits for one preprocessed frame."""
        return self.session.run(None, {self.input_name: x})[0]

    def composite(self, bgr: np.ndarray, classes_small: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
        """The class map upsampled to ``frame_size``, blended over the frame where it is
        brighter than the black level, each visible class outlined."""
        cls = cv2.resize(classes_small, frame_size, interpolation=cv2.INTER_NEAREST)
        colour = self.lut_bgr[cls]
        blended = cv2.addWeighted(bgr, 1.0 - OPACITY, colour, OPACITY, 0.0)
        draw = (cls != 0) & (bgr.max(axis=2) >= BLACK_LEVEL)
        out = np.where(draw[..., None], blended, bgr)
        for c in self.visible:
            contours, _ = cv2.findContours((cls == c).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            if contours:
                cv2.drawContours(out, contours, -1, tuple(int(v) for v in self.lut_bgr[c]), CONTOUR_PX)
        return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("--model", type=Path, default=Path("models/lumbar-synth.onnx"))
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (0 = all)")
    parser.add_argument("--out", type=Path, default=Path("out/bench/python.annotated.mp4"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ONNX Runtime intra-op threads")
    return parser.parse_args(argv)


def open_video(source: Path, out: Path) -> tuple[cv2.VideoCapture, cv2.VideoWriter, tuple[int, int]] | None:
    """The reader of ``source``, an ``mp4v`` writer of ``out`` at its rate and size, and that
    size; ``None`` after printing the error when either cannot be opened."""
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        print(f"error: {source}: cannot open", file=sys.stderr)
        return None
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        print(f"error: {out}: cannot open for writing", file=sys.stderr)
        return None
    return cap, writer, (width, height)


def bare_model_ms(pipeline: Pipeline, bgr: np.ndarray) -> list[float]:
    """The model alone on one frame, as foramen bench measures it: 10 warm-up runs, then
    100 timed ones (ms)."""
    x0 = pipeline.preprocess(bgr)
    for _ in range(10):
        pipeline.infer(x0)
    bare = []
    for _ in range(100):
        t = time.perf_counter()
        pipeline.infer(x0)
        bare.append((time.perf_counter() - t) * 1000)
    return bare


def process(
    cap: cv2.VideoCapture, writer: cv2.VideoWriter, pipeline: Pipeline, frame_size: tuple[int, int], limit: int
) -> tuple[dict[str, list[float]], int, float]:
    """Every frame (at most ``limit`` when > 0) through decode, preprocess, model, argmax,
    composite and encode: the per-stage times (ms), the frame count and the seconds."""
    times: dict[str, list[float]] = {
        k: [] for k in ("decode", "preprocess", "model", "postprocess", "composite", "encode", "end_to_end")
    }
    frames = 0
    start = time.perf_counter()
    while limit <= 0 or frames < limit:
        t0 = time.perf_counter()
        ok, bgr = cap.read()
        if not ok:
            break
        t1 = time.perf_counter()
        x = pipeline.preprocess(bgr)
        t2 = time.perf_counter()
        logits = pipeline.infer(x)
        t3 = time.perf_counter()
        classes_small = logits[0].argmax(axis=0).astype(np.uint8)
        t4 = time.perf_counter()
        out = pipeline.composite(bgr, classes_small, frame_size)
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
    return times, frames, time.perf_counter() - start


def build_report(
    args: argparse.Namespace,
    frame_size: tuple[int, int],
    pipeline: Pipeline,
    frames: int,
    seconds: float,
    bare: list[float],
    times: dict[str, list[float]],
) -> dict:
    """The JSON report (the fields ``benches/report.py`` reads)."""
    fps_out = frames / seconds
    return {
        "tool": "python_baseline",
        "input": str(args.input),
        "frame_size": list(frame_size),
        "model": str(args.model),
        "model_input": list(pipeline.input_size),
        "frames": frames,
        "seconds": seconds,
        "throughput_fps": fps_out,
        "bare_model": stats(bare),
        "efficiency": fps_out * stats(bare)["p50_ms"] / 1000,
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


def print_report(report: dict) -> None:
    """The summary and the per-stage table on stdout."""
    width, height = report["frame_size"]
    print(
        f"python baseline: {report['frames']} frames of {width}x{height} from {report['input']} "
        f"through {report['model']}"
    )
    print(
        f"throughput {report['throughput_fps']:.1f} frames/s; bare model {report['bare_model']['p50_ms']:.2f} ms; "
        f"efficiency {report['efficiency']:.2f}"
    )
    print(f"{'stage (ms)':<12} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for key, s in report["stages"].items():
        print(f"{key:<12} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['max_ms']:>8.2f}")
    print(f"peak RSS {report['peak_rss_mib']:.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    """Run the baseline over the input video; 0 on success, 1 when the video cannot be used."""
    args = parse_args(argv)
    session, meta = load_model(args.model, args.threads)
    pipeline = Pipeline.from_model(session, meta)
    video = open_video(args.input, args.out)
    if video is None:
        return 1
    cap, writer, frame_size = video
    ok, bgr = cap.read()
    if not ok:
        print(f"error: {args.input}: no frame", file=sys.stderr)
        return 1
    bare = bare_model_ms(pipeline, bgr)
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    times, frames, seconds = process(cap, writer, pipeline, frame_size, args.frames)
    writer.release()
    cap.release()
    if frames == 0:
        print(f"error: {args.input}: no frame processed", file=sys.stderr)
        return 1
    report = build_report(args, frame_size, pipeline, frames, seconds, bare, times)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"report: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
