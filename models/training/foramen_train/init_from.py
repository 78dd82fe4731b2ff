"""Seeding a run from a checkpoint (``train.init_from``).

The checkpoint must hold the same network: the ``[model]`` keys that shape weights
(:func:`shaping_keys`) and the class names must match; auxiliary heads, input size and
head dropout may differ. Used by :func:`foramen_train.network.build_model`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .config import ConfigError
from .dataset_spec import DatasetSpec
from .model import PPLiteSeg

# [model] keys that shape no weight: a checkpoint seeds a run that differs only in these
# (auxiliary heads are left out of the load; a fully convolutional network takes any
# input size, so a model trained small can go on at a larger size: progressive resizing).
WEIGHTLESS_MODEL_KEYS = ("aux_heads", "width", "height", "head_dropout")


def shaping_keys(model_config: dict) -> dict:
    """The ``[model]`` keys of ``model_config`` that shape its weights: those of
    ``WEIGHTLESS_MODEL_KEYS`` and those its encoder or decoder does not read are left out
    (an FPN checkpoint does not care what ``sppm_channels`` its config carried)."""
    unused = set(WEIGHTLESS_MODEL_KEYS)
    if model_config.get("encoder", "stdc-scratch") != "stdc-scratch":
        unused |= {"base_channels", "stage_blocks"}
    unused |= {"decoder_channels", "sppm_channels"} if model_config.get("decoder") == "fpn" else {"fpn_channels"}
    return {k: v for k, v in model_config.items() if k not in unused}


def load_initial_weights(model: PPLiteSeg, path: Path, spec: DatasetSpec) -> None:
    """Copy a checkpoint's weights into ``model``: same architecture and class names
    required (auxiliary heads, input size and head dropout may differ); the error names
    the file and what differs."""
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found (train.init_from)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" not in ckpt or "model_config" not in ckpt:
        raise ConfigError(f"{path}: not a foramen_train checkpoint (train.init_from)")
    names = [c["name"] for c in ckpt["dataset"]["classes"]]
    if names != spec.class_names:
        raise ConfigError(f"{path}: trained on classes {names}, the data set has {spec.class_names}")
    theirs = dict(ckpt["model_config"])
    theirs.setdefault("encoder", "stdc-scratch")
    theirs.setdefault("decoder", "ppliteseg")
    theirs, ours = shaping_keys(theirs), shaping_keys(dataclasses.asdict(model.cfg))
    if theirs != ours:
        diff = sorted(k for k in ours if theirs.get(k) != ours[k])
        raise ConfigError(f"{path}: model differs from [model] in {diff} (train.init_from needs the same network)")
    result = model.load_state_dict(ckpt["state_dict"], strict=False)
    stray = [k for k in (*result.missing_keys, *result.unexpected_keys) if not k.startswith("aux.")]
    if stray:
        raise ConfigError(f"{path}: weights do not fit the model: {stray[:5]}")
