"""Foramen training recipe: PP-LiteSeg-like segmentation of spine endoscopy video.

Modules: :mod:`.data` (PaddleSeg lists, augmentation), :mod:`.model` (network, params,
FLOPs), :mod:`.losses`, :mod:`.metrics`, :mod:`.config` (on :mod:`.sections`, the typed
TOML sections), :mod:`.train`, :mod:`.export` (ONNX with the ``foramen`` metadata),
:mod:`.evaluate` and :mod:`.gan` (the label-map-to-image GAN).
"""
