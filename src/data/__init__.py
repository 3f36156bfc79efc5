"""Data preparation (frames, annotations, synthetic videos) and the MindSpore input pipeline.

Modules by concern: ``extract`` (video -> frames), ``annotations`` (split files -> JSON), ``list_annotations``
(``relative/path label`` lists -> JSON), ``checkdata`` (verify a dataset), ``degenerate`` (warnings about data
that loads but trains badly, and a dataset name that contradicts its annotation), ``layout`` (the dataset
folder layout and ``open_source``: a path -> a frame source), ``frames`` (reading a folder of JPEG frames),
``video`` (reading a video file), ``temporal`` / ``spatial`` (transforms), ``presets`` (the training and the
evaluation clip recipe), ``datasets`` (MindSpore datasets), ``synthetic`` (a learnable toy dataset and the
video writers of tests and benchmarks).
"""
