"""Data preparation (frames, annotations, synthetic videos) and the MindSpore input pipeline.

Modules by concern: ``extract`` (video -> frames), ``annotations`` (split files -> JSON), ``checkdata``
(verify a dataset), ``layout`` (the dataset folder layout and ``open_source``: a path -> a frame source),
``frames`` (reading a folder of JPEG frames), ``video`` (reading a video file), ``temporal`` / ``spatial``
(transforms), ``presets`` (the training and the evaluation clip recipe), ``datasets`` (MindSpore datasets),
``synthetic`` (a learnable toy dataset and the video writers of tests and benchmarks).
"""
