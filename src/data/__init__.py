"""Data preparation (frames, annotations, synthetic videos) and the MindSpore input pipeline.

Modules by concern: ``extract`` (video -> frames), ``annotations`` (split files -> JSON),
``checkdata`` (verify a dataset), ``loader`` (frame/video reading), ``temporal`` / ``spatial``
(transforms), ``preprocess`` (the one evaluation preprocessing), ``datasets`` (MindSpore datasets),
``synthetic`` (a learnable toy dataset).
"""
