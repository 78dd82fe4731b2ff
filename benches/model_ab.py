#!/usr/bin/env python3
"""Model time of several ONNX models, alternated call by call (an A/B comparison).

On a shared 2-core host the speed of the same model drifts by 10-70 % between minutes
(2026-12-04: one Zen 3 host ran the vocalfolds INT8 model in 17.3 ms at 03:10, another
in 9.9 ms at 07:20), more than the differences worth measuring between two quantizations
of one network. Runs one after the other (`foramen bench`, `foramen-probe`) compare
hosts as much as models; here every model runs once in each round, so a slow minute
slows all of them alike, and the medians compare the models.

Only the ONNX Runtime call is timed, on one fixed random input of each model's own input
shape (dynamic dimensions 1), with Foramen's CPU settings: intra-op threads = `--threads`
(Foramen uses the cores, 2 here), one inter-op thread, spinning off (several sessions
that spin would take each other's cores, and Foramen's pipeline does not spin either).

    python benches/model_ab.py models/vocalfolds.int8.onnx models/vocalfolds.onnx \\
        [--calls 300] [--warmup 30] [--threads 2] [--json out/bench/model-ab.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(model: Path, threads: int) -> ort.InferenceSession:
    """A CPU session with Foramen's thread settings; a model that does not load names its file."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ONNX Runtime raises its own exception types
        raise SystemExit(f"error: {model}: {err}") from err


def alternate(models: list[Path], calls: int, warmup: int, threads: int) -> dict[str, dict]:
    """Per model: the percentiles of its call times (ms) over ``calls`` rounds after
    ``warmup`` rounds, each round calling every model once in the given order."""
    sessions = [session(m, threads) for m in models]
    rng = np.random.default_rng(0)
    feeds = []
    for s in sessions:
        spec = s.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in spec.shape]
        feeds.append({spec.name: rng.random(shape, dtype=np.float32)})
    times_ms = [[] for _ in models]
    for round_index in range(warmup + calls):
        for k, (s, feed) in enumerate(zip(sessions, feeds)):
            start = time.perf_counter()
            s.run(None, feed)
            if round_index >= warmup:
                times_ms[k].append((time.perf_counter() - start) * 1e3)
    return {
        str(m): {
            "input_shape": list(feeds[k][next(iter(feeds[k]))].shape),
            **{f"p{q}_ms": round(float(np.percentile(times_ms[k], q)), 3) for q in (10, 50, 90)},
            "mean_ms": round(float(np.mean(times_ms[k])), 3),
        }
        for k, m in enumerate(models)
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: a table on stdout, the same as JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--calls", type=int, default=300, help="timed rounds (each calls every model once)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    for model in args.models:
        if not model.is_file():
            print(f"error: {model}: no such model file", file=sys.stderr)
            return 1
    if args.calls < 1 or args.warmup < 0 or args.threads < 1:
        print("error: --calls and --threads must be at least 1, --warmup at least 0", file=sys.stderr)
        return 1
    result = alternate(args.models, args.calls, args.warmup, args.threads)
    width = max(len(m) for m in result)
    print(f"{'model':<{width}}  p10 ms  p50 ms  p90 ms   ({args.calls} alternated calls, {args.threads} threads)")
    for model, r in result.items():
        print(f"{model:<{width}}  {r['p10_ms']:6.2f}  {r['p50_ms']:6.2f}  {r['p90_ms']:6.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"calls": args.calls, "warmup": args.warmup, "threads": args.threads, "models": result}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
