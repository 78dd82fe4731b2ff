"""Pretrained encoders (the wheel's real ImageNet weights, no network), their normalisation
in the ONNX contract, ignored classes, and fine-tuning from a checkpoint."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from foramen_train import encoders, epoch_loop, evaluate, export, finetune, init_from, network, optim, train, train_data
from foramen_train.config import ConfigError, config_from_dict, load_config
from foramen_train.dataset_spec import DataError, load_dataset_spec
from foramen_train.frames import normalize
from foramen_train.losses import SegmentationLoss
from foramen_train.model import ModelConfig, PPLiteSeg

from conftest import CLASSES, TINY_MODEL

LITE_MODEL = """[model]
encoder = "efficientnet-lite0"
width = 64
height = 64
decoder_channels = [8, 16, 32]
sppm_channels = 16
head_channels = 16
"""


def config_text(root: Path, model: str = TINY_MODEL, extra: str = "") -> str:
    return f'[data]\nroot = "{root}"\n{model}\n[train]\nepochs = 2\nbatch_size = 4\nlr = 5e-3\n{extra}'


def one_epoch_run(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A one-epoch run of the tiny model on ``root``: its config file and run folder."""
    path = tmp_path / "c.toml"
    path.write_text(config_text(root))
    base = tmp_path / "base"
    assert train.main(["--config", str(path), "--out", str(base), "--no-progress", "--epochs", "1"]) == 0
    return path, base


def test_lite0_features_come_from_the_wheels_weights():
    model = PPLiteSeg(ModelConfig(num_classes=4, width=64, height=96, encoder="efficientnet-lite0"), pretrained=True)
    state = torch.load(encoders.weights_path("efficientnet-lite0"), map_location="cpu", weights_only=True)
    assert torch.equal(model.encoder.conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(model.encoder.blocks[5]._project_conv.weight, state["_blocks.5._project_conv.weight"])
    model.eval()
    f4, feats = model.encoder.forward_with_stem(torch.zeros(1, 3, 96, 64))
    assert [tuple(f.shape[1:]) for f in (f4, *feats)] == [(24, 24, 16), (40, 12, 8), (112, 6, 4), (320, 3, 2)]
    assert model(torch.zeros(2, 3, 96, 64)).shape == (2, 4, 96, 64)
    # Without `pretrained` the weights are random (a checkpoint supplies them).
    scratch = PPLiteSeg(ModelConfig(num_classes=4, width=64, height=96, encoder="efficientnet-lite0"))
    assert not torch.equal(scratch.encoder.conv_stem.weight, state["_conv_stem.weight"])


def test_unknown_encoder_is_named(tiny_dataset, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(config_text(tiny_dataset, TINY_MODEL + 'encoder = "resnet50"\n'))
    with pytest.raises(ConfigError, match="model.encoder.*resnet50"):
        load_config(path)


def test_encoder_normalisation_round_trips_through_the_onnx_contract(tiny_dataset, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(config_text(tiny_dataset, LITE_MODEL, "[export]\nparity_frames = 2\n"))
    out = tmp_path / "run"
    assert train.main(["--config", str(path), "--out", str(out), "--no-progress", "--epochs", "1"]) == 0
    meta = evaluate.read_onnx_metadata(out / "model.onnx")
    mean, std = encoders.normalization("efficientnet-lite0")
    assert meta["input"]["mean"] == list(mean) and meta["input"]["std"] == list(std)
    assert mean == (127 / 255,) * 3 and meta["training"]["encoder"] == "efficientnet-lite0"
    # The runtime's preprocessing (from the contract) equals the training's (from the encoder).
    rgb = np.asarray(Image.open(tiny_dataset / "images" / "val000.png").convert("RGB"))
    assert np.allclose(evaluate.preprocess(rgb, meta)[0], normalize(rgb, (mean, std)), atol=1e-6)
    model, _ = export.load_checkpoint(out / "best.pt")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    x = evaluate.preprocess(rgb, meta)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.allclose(session.run(None, {"image": x})[0], expected, atol=1e-4)


def test_encoder_learning_rate_multiplier_and_frozen_stem(tiny_dataset, tmp_path):
    cfg = config_from_dict(
        json.loads(
            json.dumps(
                {
                    "data": {"root": str(tiny_dataset)},
                    "model": {"encoder": "efficientnet-lite0", "width": 64, "height": 64},
                    "train": {"encoder_lr_mult": 0.1, "freeze_stem": True},
                }
            )
        )
    )
    model = PPLiteSeg(cfg.model.build(4))
    optimizer = optim.build_optimizer(model, cfg)
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    for group in optimizer.param_groups:
        in_encoder = {id(p) in encoder_ids for p in group["params"]}
        assert len(in_encoder) == 1 and group["lr_mult"] == (0.1 if in_encoder.pop() else 1.0)
    model.train()
    network.set_encoder_training(model, 1, cfg)
    stem = [p for m in model.encoder.stem_modules() for p in m.parameters()]
    assert stem and not any(p.requires_grad for p in stem)
    assert all(p.requires_grad for p in model.encoder.blocks[-1].parameters())
    assert not model.encoder.bn0.training and model.encoder.blocks[-1]._bn1.training


def test_ignore_classes_from_dataset_toml_and_config(tiny_dataset, tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    for item in tiny_dataset.iterdir():
        (root / item.name).symlink_to(item)
    (root / "dataset.toml").unlink()
    text = (tiny_dataset / "dataset.toml").read_text()
    (root / "dataset.toml").write_text('ignore_classes = ["ligament"]\n' + text)
    spec = load_dataset_spec(root)
    assert spec.ignore_classes == ("ligament",) and spec.ignored_indices == [2]
    assert spec.with_ignored(["bone"], "x").ignored_indices == [1, 2]
    with pytest.raises(DataError, match="x: unknown class.*'void'"):
        spec.with_ignored(["void"], "x")
    with pytest.raises(DataError, match="leaves no class"):
        spec.with_ignored([n for n, _ in CLASSES], "x")
    (root / "dataset.toml").write_text('ignore_classes = ["nerve"]\n' + text)
    with pytest.raises(DataError, match=r"dataset.toml: ignore_classes: unknown class"):
        load_dataset_spec(root)


def test_ignored_classes_are_left_out_of_validation_and_the_contract(tiny_dataset, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(config_text(tiny_dataset).replace("[data]\n", '[data]\nignore_classes = ["disc"]\n', 1))
    cfg = load_config(path, ["train.epochs=1"])
    spec, _, val_ds = train_data.build_datasets(cfg)
    assert spec.ignored_indices == [3]
    model = PPLiteSeg(cfg.model.build(spec.num_classes)).eval()
    loss = SegmentationLoss(spec.num_classes, spec.ignore_index, cfg.train.loss)
    loader = [tuple(torch.stack(t) for t in zip(*[val_ds[i] for i in range(len(val_ds))]))]
    _, matrix = epoch_loop.validate(model, loader, loss, spec, progress=False)
    assert matrix.matrix[3].sum() == 0 and matrix.matrix[:3].sum() > 0
    # Without the setting, disc pixels are scored.
    _, plain = epoch_loop.validate(model, loader, loss, load_dataset_spec(tiny_dataset), progress=False)
    assert plain.matrix[3].sum() > 0
    out = tmp_path / "run"
    assert train.main(["--config", str(path), "--out", str(out), "--no-progress", "--epochs", "1"]) == 0
    assert evaluate.read_onnx_metadata(out / "model.onnx")["ignore_classes"] == ["disc"]
    assert json.loads((out / "summary.json").read_text())["ignore_classes"] == ["disc"]


def test_finetune_starts_from_the_checkpoint(tiny_dataset, tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(config_text(tiny_dataset))
    base = tmp_path / "base"
    assert train.main(["--config", str(path), "--out", str(base), "--no-progress"]) == 0
    out = tmp_path / "ft"
    assert (
        finetune.main(
            [
                "--from",
                str(base / "best.pt"),
                "--data",
                str(tiny_dataset),
                "--list",
                "train.txt",
                "--val",
                "val.txt",
                "--out",
                str(out),
                "--steps",
                "3",
                "--seed",
                "4",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    # val.txt holds none of train.txt's frames: the change against the checkpoint counts,
    # and a loss is printed as a warning.
    change = summary["val_miou"] - summary["initial_val_miou"]
    assert summary["val_held_out"] is True and summary["val_miou_change"] == pytest.approx(change)
    assert summary["worse_than_checkpoint"] is (change < 0)
    printed = capsys.readouterr()
    assert f"val mIoU {summary['initial_val_miou']:.4f} -> {summary['val_miou']:.4f}" in printed.out
    assert ("warning: on val.txt the fine-tune scores" in printed.err) is (change < 0)
    # The loss before the first step is the checkpoint's own on the same list.
    model, ckpt = export.load_checkpoint(base / "best.pt")
    cfg = load_config(path)
    spec, _, val_ds = train_data.build_datasets(cfg)
    loss = SegmentationLoss(spec.num_classes, spec.ignore_index, cfg.train.loss)
    loader = [tuple(torch.stack(t) for t in zip(*[val_ds[i] for i in range(len(val_ds))]))]
    expected, _ = epoch_loop.validate(model, loader, loss, spec, progress=False)
    assert summary["initial_val_loss"] == pytest.approx(expected, rel=1e-5)
    assert summary["init_from"] == str((base / "best.pt").resolve())
    # 3 steps rounded up to whole epochs of 8 frames // batch 4 = 2 steps.
    assert summary["steps"] == 4 and np.isfinite(summary["final_val_loss"])
    # Same contract, weights moved.
    meta = evaluate.read_onnx_metadata(out / "model.onnx")
    assert [c["name"] for c in meta["classes"]] == [n for n, _ in CLASSES]
    tuned = torch.load(out / "last.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(tuned[k], v) for k, v in ckpt["state_dict"].items() if k in tuned)


def test_finetune_refuses_a_checkpoint_of_other_classes(tiny_dataset, tmp_path):
    _, base = one_epoch_run(tiny_dataset, tmp_path)
    ckpt = torch.load(base / "best.pt", weights_only=True)
    ckpt["dataset"]["classes"][1]["name"] = "nerve"
    torch.save(ckpt, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="other.pt: trained on classes"):
        finetune.finetune(tmp_path / "other.pt", tiny_dataset, "train.txt", tmp_path / "ft", steps=1)


def test_a_checkpoint_seeds_a_run_at_another_input_size_but_not_another_network(tiny_dataset, tmp_path):
    path, base = one_epoch_run(tiny_dataset, tmp_path)
    ckpt = torch.load(base / "best.pt", weights_only=True)
    spec = load_dataset_spec(tiny_dataset)
    # Progressive resizing: the same weights at 96x128 with head dropout on.
    larger = load_config(path).model
    larger.width, larger.height, larger.head_dropout = 96, 128, 0.1
    model = PPLiteSeg(larger.build(spec.num_classes))
    init_from.load_initial_weights(model, base / "best.pt", spec)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ckpt["state_dict"].items() if not k.startswith("aux."))
    model.eval()
    assert model(torch.zeros(1, 3, 128, 96)).shape == (1, spec.num_classes, 128, 96)
    # A key that shapes weights is refused, named.
    wider = load_config(path).model
    wider.head_channels = 24
    with pytest.raises(ConfigError, match=r"best.pt: model differs from \[model\] in \['head_channels'\]"):
        init_from.load_initial_weights(PPLiteSeg(wider.build(spec.num_classes)), base / "best.pt", spec)
    # Keys the encoder or decoder does not read are not compared either.
    fpn = {"encoder": "efficientnet-lite0", "decoder": "fpn", "fpn_channels": 64, "sppm_channels": 96}
    fpn |= {"decoder_channels": [32, 64, 96], "base_channels": 16, "head_channels": 32, "width": 320}
    assert init_from.shaping_keys(fpn) == {
        "encoder": "efficientnet-lite0",
        "decoder": "fpn",
        "fpn_channels": 64,
        "head_channels": 32,
    }
    ppl = {
        "encoder": "stdc-scratch",
        "decoder": "ppliteseg",
        "fpn_channels": 64,
        "sppm_channels": 96,
        "base_channels": 16,
    }
    assert init_from.shaping_keys(ppl) == {
        "encoder": "stdc-scratch",
        "decoder": "ppliteseg",
        "sppm_channels": 96,
        "base_channels": 16,
    }


def test_adapt_scores_the_rest_of_each_sequence_and_resumes(tiny_dataset, tmp_path):
    from foramen_train import adapt

    _, base = one_epoch_run(tiny_dataset, tmp_path)
    groups = adapt.sequences(tiny_dataset, "val.txt")
    assert list(groups) == ["images"] and [i.name for i, _ in groups["images"]] == [f"val{i:03d}.png" for i in range(4)]
    out = tmp_path / "adapt"
    result = adapt.run(base / "best.pt", tiny_dataset, "val.txt", [2], [0], 2, out)
    (row,) = result["rows"]
    assert row["n"] == 2 and row["test_frames"] == 2 and len(row["finetuned_miou"]) == 1
    # N = 0 is the checkpoint itself on the same later frames.
    assert row["checkpoint_miou"] == pytest.approx(adapt.score(base / "best.pt", groups["images"][2:]))
    assert (out / "lists" / "images-n2-s0-train.txt").read_text().splitlines() == [
        "images/val000.png masks/val000.png",
        "images/val001.png masks/val001.png",
    ]
    stamp = (out / "images-n2-s0" / "score.json").stat().st_mtime_ns
    again = adapt.run(base / "best.pt", tiny_dataset, "val.txt", [2], [0], 2, out)
    assert again["rows"] == result["rows"] and (out / "images-n2-s0" / "score.json").stat().st_mtime_ns == stamp
    assert "| images | 2 | 2 |" in adapt.markdown(result) and row["reference_miou"] is None
    # The reference: the same fine-tune on the scored frames themselves; seed runs reused.
    with_ref = adapt.run(base / "best.pt", tiny_dataset, "val.txt", [2], [0], 2, out, reference=True)
    assert (out / "images-n2-s0" / "score.json").stat().st_mtime_ns == stamp
    (ref_row,) = with_ref["rows"]
    assert ref_row["finetuned_miou"] == row["finetuned_miou"]
    ceiling = adapt.score(out / "images-n2-ref" / "last.pt", groups["images"][2:])
    assert ref_row["reference_miou"] == pytest.approx(ceiling)
    ref_list = (out / "lists" / "images-n2-ref-train.txt").read_text().splitlines()
    assert ref_list == ["images/val002.png masks/val002.png", "images/val003.png masks/val003.png"]
    assert "share of the gap" in adapt.markdown(with_ref)
