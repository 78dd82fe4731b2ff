"""Config loading: errors name the file and the field; overrides; path resolution."""

import tomllib
from pathlib import Path

import pytest

from foramen_train.config import ConfigError, load_config, to_toml

BASE = """
[data]
root = "data/set"
classes = ["a", "b"]
[model]
width = 64
height = 32
[train]
epochs = 3
[train.loss]
dice_weight = 0.25
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "Cargo.toml").write_text("[workspace]\n")
    path = tmp_path / "models" / "cfg.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_loads_and_resolves_root_against_repo(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.data.root == str((tmp_path / "data" / "set").resolve())
    assert cfg.train.epochs == 3 and cfg.train.loss.dice_weight == 0.25 and cfg.model.base_channels == 64


def test_overrides(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["train.epochs=7", "data.augment.hflip=0", "train.optimizer=sgd"])
    assert cfg.train.epochs == 7 and cfg.data.augment.hflip == 0.0 and cfg.train.optimizer == "sgd"


@pytest.mark.parametrize(
    "text,field",
    [
        (BASE + "[export]\nopsett = 18\n", "export.opsett"),
        (BASE.replace("epochs = 3", 'epochs = "3"'), "train.epochs"),
        (BASE.replace("width = 64", "width = 60"), "model.width"),
        (BASE.replace("epochs = 3", 'epochs = 3\noptimizer = "adam"'), "train.optimizer"),
        (BASE.replace('root = "data/set"\n', ""), "data.root"),
    ],
)
def test_errors_name_file_and_field(tmp_path, text, field):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_effective_config_round_trips(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    doc = tomllib.loads(to_toml(cfg.to_dict(), header="note"))
    assert doc["train"]["loss"]["dice_weight"] == 0.25 and doc["data"]["classes"] == ["a", "b"]
    assert "class_weights" not in doc["train"]["loss"]  # None is left out


def test_repo_configs_are_valid():
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.toml"))
    assert {p.name for p in configs} >= {"lumbar-synth.toml", "vocalfolds-smoke.toml"}
    for path in configs:
        if path.name.startswith("gan-"):
            from foramen_train.gan import load_gan_config

            load_gan_config(path)  # a label-to-image GAN config, not a segmentation one
        else:
            load_config(path)
