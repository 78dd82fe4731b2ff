"""Foramen training recipe: PP-LiteSeg-like segmentation of spine endoscopy video.

Modules: :mod:`.data` (PaddleSeg lists, augmentation), :mod:`.model` (network, params,
FLOPs), :mod:`.losses`, :mod:`.metrics`, :mod:`.config`, :mod:`.train`, :mod:`.export`
(ONNX with the ``foramen`` metadata) and :mod:`.evaluate`.
"""
