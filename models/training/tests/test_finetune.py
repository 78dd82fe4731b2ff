"""Fine-tuning a checkpoint on a few frames: rehearsal of its training frames and the
pull back toward its weights (decoupled L2-SP)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_encoders import one_epoch_run
from torch import nn

from foramen_train import finetune, optim
from foramen_train.config import ConfigError, load_config
from foramen_train.dataset_spec import DataError
from foramen_train.frames import read_list


@pytest.fixture(scope="module")
def tiny_run(tiny_dataset, tmp_path_factory) -> tuple[Path, Path]:
    """One one-epoch run of the tiny model, shared by this module's fine-tunes: its config
    file and run folder."""
    return one_epoch_run(tiny_dataset, tmp_path_factory.mktemp("base"))


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Between the weights of two state dicts (BatchNorm statistics are no weights)."""
    weights = [k for k in b if k in a and "running_" not in k and "num_batches" not in k]
    return math.sqrt(sum(float(((a[k].float() - b[k].float()) ** 2).sum()) for k in weights))


def test_the_pull_toward_the_start_shrinks_the_distance_by_lr_times_decay():
    layer = nn.Linear(3, 2)
    start = {k: v.clone() for k, v in layer.state_dict().items()}
    opt = torch.optim.SGD([{"params": list(layer.parameters()), "lr": 0.01}])
    anchor = optim.StartingPointDecay(layer, decay=25.0)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(1.0)
    before = anchor.distance(layer)
    anchor.apply(opt)  # 0.01 * 25 = a quarter of the way back
    assert anchor.distance(layer) == pytest.approx(0.75 * before, rel=1e-5)
    for name, p in layer.named_parameters():
        assert torch.allclose(p, start[name] + 0.75)


def test_l2sp_keeps_a_finetune_closer_to_its_checkpoint(tiny_dataset, tiny_run, tmp_path):
    _, base = tiny_run
    ckpt = torch.load(base / "best.pt", weights_only=True)["state_dict"]
    moved = {}
    for decay in (0.0, 150.0):
        out = tmp_path / f"ft-{decay}"
        finetune.finetune(
            base / "best.pt", tiny_dataset, "val.txt", out, steps=8, lr=5e-3, export=False,
            overrides=[f"train.l2sp_decay={decay}"],
        )  # fmt: skip
        moved[decay] = _distance(torch.load(out / "last.pt", weights_only=True)["state_dict"], ckpt)
    assert 0 < moved[150.0] < 0.7 * moved[0.0], moved


def test_l2sp_decay_is_checked_against_the_learning_rate(tiny_dataset, tiny_run, tmp_path):
    _, base = tiny_run
    with pytest.raises(ConfigError, match="train.l2sp_decay: must be >= 0 with train.lr"):
        finetune.finetune(
            base / "best.pt", tiny_dataset, "val.txt", tmp_path / "ft", lr=1e-2, overrides=["train.l2sp_decay=100.0"]
        )


def test_rehearsal_mixes_the_checkpoints_training_frames_in(tiny_dataset, tiny_run, tmp_path):
    path, base = tiny_run
    out = tmp_path / "ft"
    summary = finetune.finetune(
        base / "best.pt", tiny_dataset, "val.txt", out, steps=3, export=False,
        rehearse=finetune.REHEARSE_CHECKPOINT, rehearse_share=0.4,
    )  # fmt: skip
    mix = read_list(Path("/"), str(out / "train-mixed.txt"))
    new, trained = read_list(tiny_dataset, "val.txt"), read_list(tiny_dataset, load_config(path).data.train_list)
    # The 4 new frames repeated to 40 entries, then 60 training frames: 40 % new.
    assert mix[:40] == [(i.resolve(), m.resolve()) for i, m in new * 10]
    trained_pairs = {(i.resolve(), m.resolve()) for i, m in trained}
    assert len(mix) == 100 and all(pair in trained_pairs for pair in mix[40:])
    assert summary["train_frames"] == 100
    assert summary["rehearse"] == {"list": str(tiny_dataset.resolve() / "train.txt"), "share": 0.4, "new_frames": 4}
    assert json.loads((out / "summary.json").read_text())["rehearse"]["share"] == 0.4
    # Validation stays on the new frames.
    assert summary["val_frames"] == len(new)


def test_rehearsal_errors_name_what_is_wrong(tiny_dataset, tiny_run, tmp_path):
    _, base = tiny_run
    with pytest.raises(ConfigError, match="--rehearse-share: must be in"):
        finetune.finetune(
            base / "best.pt", tiny_dataset, "val.txt", tmp_path / "a", rehearse="checkpoint", rehearse_share=0
        )
    # A checkpoint whose training data is not on this machine says so.
    ckpt = torch.load(base / "best.pt", weights_only=True)
    ckpt["config"]["data"]["root"] = str(tmp_path / "elsewhere")
    torch.save(ckpt, tmp_path / "moved.pt")
    with pytest.raises(DataError, match="elsewhere/train.txt: the checkpoint's training list is not on this machine"):
        finetune.finetune(tmp_path / "moved.pt", tiny_dataset, "val.txt", tmp_path / "b", rehearse="checkpoint")
    # A rehearsal list of a data set with other classes is refused, naming its dataset.toml.
    other = tmp_path / "other"
    other.mkdir()
    (other / "dataset.toml").write_text(
        (tiny_dataset / "dataset.toml").read_text().replace('name = "background"', 'name = "nerve"')
    )
    (other / "list.txt").write_text((tiny_dataset / "train.txt").read_text())
    with pytest.raises(DataError, match="other/dataset.toml: classes"):
        finetune.finetune(base / "best.pt", tiny_dataset, "val.txt", tmp_path / "c", rehearse=str(other / "list.txt"))
    assert not any(p.exists() for p in (tmp_path / "a", tmp_path / "b", tmp_path / "c"))


def test_adapt_measures_rehearsed_finetunes(tiny_dataset, tiny_run, tmp_path):
    from foramen_train import adapt

    _, base = tiny_run
    out = tmp_path / "adapt"
    result = adapt.run(base / "best.pt", tiny_dataset, "val.txt", [2], [0], 2, out, rehearse="checkpoint")
    mix = (out / "images-n2-s0" / "train-mixed.txt").read_text().splitlines()
    assert len(mix) == 80 and result["rehearse"] == "checkpoint" and result["rehearse_share"] == 0.5
    assert "rehearsing the checkpoint's training list, new frames 50% of each epoch" in adapt.markdown(result)
    # adapt validates on two of the new frames: no verdict against the checkpoint.
    summary = json.loads((out / "images-n2-s0" / "summary.json").read_text())
    assert summary["val_held_out"] is False and summary["worse_than_checkpoint"] is None


def test_finetune_validation_counts_as_held_out_only_without_trained_frames(tiny_dataset, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    train_lines = (tiny_dataset / "train.txt").read_text().splitlines()
    val_lines = (tiny_dataset / "val.txt").read_text().splitlines()
    (lists / "mixed.txt").write_text("\n".join(val_lines[:3] + train_lines[:1]) + "\n")
    assert finetune.val_is_held_out(tiny_dataset, "train.txt", "val.txt", None)
    assert not finetune.val_is_held_out(tiny_dataset, "train.txt", None, None)
    assert not finetune.val_is_held_out(tiny_dataset, "train.txt", str(lists / "mixed.txt"), None)
    # With rehearsal the mixed list is what was trained on.
    mix = read_list(tiny_dataset, "val.txt")[:1]
    assert not finetune.val_is_held_out(tiny_dataset, "train.txt", "val.txt", mix)


def test_adapt_scales_steps_with_n_and_reruns_a_changed_recipe(tiny_dataset, tiny_run, tmp_path):
    from foramen_train import adapt

    _, base = tiny_run
    out = tmp_path / "adapt"
    score = out / "images-n2-s0" / "score.json"
    scaled = adapt.run(base / "best.pt", tiny_dataset, "val.txt", [2], [0], 2, out, steps_per_frame=3)
    (row,) = scaled["rows"]
    # N = 2 frames at 3 steps each: 6 steps, more than --steps 2.
    assert row["steps"] == 6 and json.loads(score.read_text())["recipe"]["steps"] == 6
    metrics = (out / "images-n2-s0" / "metrics.csv").read_text().splitlines()
    assert "max(2, 3 × N) steps" in adapt.markdown(scaled) and "| images | 2 | 6 | 2 |" in adapt.markdown(scaled)
    # The same out folder with another recipe is measured again, not read from the cache.
    plain = adapt.run(base / "best.pt", tiny_dataset, "val.txt", [2], [0], 2, out)
    assert plain["rows"][0]["steps"] == 2 and json.loads(score.read_text())["recipe"]["steps"] == 2
    assert (out / "images-n2-s0" / "metrics.csv").read_text().splitlines() != metrics
    with pytest.raises(ConfigError, match="--steps-per-frame 0"):
        adapt.run(base / "best.pt", tiny_dataset, "val.txt", [2], [0], 2, tmp_path / "bad", steps_per_frame=0)
    assert not (tmp_path / "bad").exists()


def test_adapt_picks_the_most_uncertain_frames_of_a_pool_and_scores_after_it(tiny_dataset, tiny_run, tmp_path):
    from scipy.stats import entropy

    from foramen_train import adapt
    from foramen_train.evaluate import checkpoint_predictor, labelled_frames

    _, base = tiny_run
    # The training list: its 8 frames leave a pool of 4 to pick 2 from and 4 to score.
    pairs = adapt.sequences(tiny_dataset, "train.txt")["images"]
    predict, meta, _ = checkpoint_predictor(base / "best.pt")
    # SciPy's entropy of each pixel's softmax, averaged: the reference for the ranking.
    unsure = [
        entropy(torch.from_numpy(predict(x)).float().softmax(1)[0].numpy(), axis=0).mean()
        for x, _ in labelled_frames(pairs[:4], meta, progress=False)
    ]
    assert adapt.mean_entropy(base / "best.pt", pairs[:4]) == pytest.approx(unsure, rel=1e-4)
    out = tmp_path / "adapt"
    pick = adapt.Selection("uncertain", pool=0.5)
    result = adapt.run(base / "best.pt", tiny_dataset, "train.txt", [2], [0], 2, out, selection=pick)
    (row,) = result["rows"]
    chosen = [pairs[i] for i in sorted(np.argsort(unsure)[-2:])]
    assert row["picked"] == [image.name for image, _ in chosen] and row["test_frames"] == 4
    trained = (out / "lists" / "images-uncertain-n2-s0-train.txt").read_text().split()
    assert trained == [str(p.relative_to(tiny_dataset)) for pair in chosen for p in pair]
    assert row["checkpoint_miou"] == pytest.approx(adapt.score(base / "best.pt", pairs[4:]))
    assert "the most uncertain (entropy) N frames of the first 50%" in adapt.markdown(result)
    # The same frames fine-tuned on, other frames scored (a guard): scored anew, not cached.
    first = adapt.Selection("first", pool=0.5)
    adapt.run(base / "best.pt", tiny_dataset, "train.txt", [2], [0], 2, out, selection=first)
    guarded = adapt.run(
        base / "best.pt", tiny_dataset, "train.txt", [2], [0], 2, out, selection=adapt.Selection("first", 0.5, 1)
    )
    (row,) = guarded["rows"]
    assert row["test_frames"] == 3
    assert row["finetuned_miou"] == [pytest.approx(adapt.score(out / "images-first-n2-s0" / "last.pt", pairs[5:]))]
    # Picks other than the first N need a pool; a pool and guard must leave frames to score.
    with pytest.raises(ConfigError, match="--pick spread --guard 0 needs --pool"):
        adapt.choose(base / "best.pt", "images", pairs, 1, "spread")
    with pytest.raises(DataError, match="images has 8 frames: a pool of 4 and a guard of 3 leave 1 to score"):
        adapt.choose(base / "best.pt", "images", pairs, 2, "first", pool=0.5, guard=3)
    assert adapt.choose(base / "best.pt", "images", pairs, 2, "spread", pool=0.75)[0] == [1, 4]
