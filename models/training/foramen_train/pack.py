"""Pack a run's checkpoint for bundling in ``models/``: half the bytes, the same model.

The weights of convolutions and linear layers (every floating-point tensor with more than
one dimension: 99.9 % of the bytes) are stored in half precision; BatchNorm statistics,
biases and everything else stay as they are. Loading casts back: ``load_state_dict``
copies each tensor into the model's float32 parameter, so export, fine-tuning
(``train.init_from``, ``foramen_train.finetune``) and evaluation read a packed checkpoint
exactly as a run's own. Why: the FP32 ONNX models are exported from the bundled
checkpoints by ``make models`` instead of living in git, and the working tree must stay
small enough to travel to a lent GPU (docs/GPU.md). The rounding (relative 2**-11) is
measured in the model cards: the Lite0 lumbar model's val mIoU is unchanged to 4 decimals.

CLI (from ``models/training``)::

    python -m foramen_train.pack --from runs/lumbar-lite0/last.pt --out ../lumbar-synth-lite0.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

REQUIRED_KEYS = ("model_config", "state_dict", "dataset", "training", "config")


class PackError(RuntimeError):
    """The input is not a foramen_train checkpoint, or the output would overwrite it."""


def halve_weights(state_dict: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A copy of ``state_dict`` with every floating tensor of 2+ dimensions in float16;
    returns it and how many tensors were halved."""
    out: dict[str, Any] = {}
    halved = 0
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() > 1:
            out[key] = value.to(torch.float16)
            halved += 1
        else:
            out[key] = value
    return out, halved


def pack(src: Path, dst: Path) -> dict[str, Any]:
    """Write the packed copy of checkpoint ``src`` to ``dst``; return a summary."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise PackError(f"{src}: checkpoint not found (--from)")
    if dst.exists() and dst.resolve() == src.resolve():
        raise PackError(f"{dst}: is the input checkpoint; name another --out")
    try:
        ckpt = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors alike: name the file once
        raise PackError(f"{src}: not readable as a PyTorch checkpoint ({err})") from err
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise PackError(f"{src}: not a foramen_train checkpoint (missing {missing[0]!r})")
    state, halved = halve_weights(ckpt["state_dict"])
    packed = dict(ckpt, state_dict=state)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(packed, dst)
    return {"from": str(src), "out": str(dst), "tensors_halved": halved, "bytes": dst.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    """The CLI: packs one checkpoint and prints what it wrote as JSON."""
    parser = argparse.ArgumentParser(prog="python -m foramen_train.pack", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="src", type=Path, required=True, help="a run's best.pt or last.pt")
    parser.add_argument("--out", type=Path, required=True, help="the packed checkpoint to write")
    args = parser.parse_args(argv)
    try:
        summary = pack(args.src, args.out)
    except (PackError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    halved, size = summary["tensors_halved"], summary["bytes"]
    print(f"packed {summary['from']} -> {summary['out']}: {halved} tensors in float16, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
