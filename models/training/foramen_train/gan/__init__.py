"""Label-map-to-image GAN (pix2pix) for training-set augmentation, as the study did.

The study (Jiang et al. 2026) grew its training set with images a generative adversarial
network drew from segmentation label maps. This package is that part of the recipe:

* :class:`UNetGenerator` (:mod:`.networks`): the pix2pix generator (Isola et al., CVPR
  2017, "Image-to-image translation with conditional adversarial networks"): an
  encoder-decoder with skip connections from a one-hot label map to an RGB image. Two
  departures from the paper, both for small CPU runs: the decoder upsamples by nearest
  neighbour and a 3x3 convolution instead of a transposed convolution (no checkerboard
  artefacts, Odena et al., Distill 2016), and dropout is only active in training, so
  sampling is a deterministic function of the label map and the variety comes from the
  label maps.
* :class:`PatchDiscriminator` (:mod:`.networks`): the 70x70 PatchGAN: it sees the label
  map and an image and scores overlapping patches real or fake. Least-squares GAN loss
  (Mao et al. 2017, as the pix2pix code offers) plus the paper's L1 term (weight 100),
  trained by :func:`train_gan` (:mod:`.training`).
* :func:`synthesize_label_map` (:mod:`.labels`): new layouts from the training masks by
  flips, rotation, scale, elastic deformation (Simard et al. 2003) and recombination (two
  masks spliced along a wavy line; the instruments of one pasted onto another), so that
  synthetic images show arrangements the real set does not.
* :class:`GanSource` (:mod:`.sampling`): the training recipe's ``[data.gan]`` option:
  synthetic pairs drawn per ``(seed, epoch, index)``, so a run is reproducible.
* :func:`quality` (:mod:`.image_quality`): KID, L1 and segmentation mIoU of generated images;
  :func:`save_grid` (:mod:`.grid`): a picture grid.
* :mod:`.config`: the GAN config and the ``[data.gan]`` section; :mod:`.cli`: the CLI.

CLI::

    python -m foramen_train.gan train --config configs/gan-vocalfolds.toml [--out DIR]
    python -m foramen_train.gan grid --generator DIR/generator.pt [--list val.txt] [--out grid.png]
    python -m foramen_train.gan quality --generator DIR/generator.pt --features RUN/best.pt
        [--seg-model ../vocalfolds.onnx] [--out quality.json]
"""

from .cli import main
from .config import GanAugmentConfig, GanConfig, GanDataSection, GanTrainConfig, load_gan_config
from .errors import GanError
from .grid import colorize, save_grid
from .image_quality import SegFeatures, class_mean_painting, kid, quality, seg_miou
from .labels import LabelSynthConfig, elastic_deform, splice, synthesize_label_map
from .networks import GeneratorConfig, PatchDiscriminator, UNetGenerator, one_hot, to_uint8, to_unit
from .sampling import GENERATOR_FORMAT, GanSource, Generator
from .training import load_pairs, train_gan

__all__ = [
    "GENERATOR_FORMAT",
    "GanAugmentConfig",
    "GanConfig",
    "GanDataSection",
    "GanError",
    "GanSource",
    "GanTrainConfig",
    "Generator",
    "GeneratorConfig",
    "LabelSynthConfig",
    "PatchDiscriminator",
    "SegFeatures",
    "UNetGenerator",
    "class_mean_painting",
    "colorize",
    "elastic_deform",
    "kid",
    "load_gan_config",
    "load_pairs",
    "main",
    "one_hot",
    "quality",
    "save_grid",
    "seg_miou",
    "splice",
    "synthesize_label_map",
    "to_uint8",
    "to_unit",
    "train_gan",
]
