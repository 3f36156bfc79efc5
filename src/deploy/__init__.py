"""Deployment: export (MINDIR / AIR / ONNX) with parity checks, the Ascend-310 flow (pre/post-processing
and its Python runners: MindSpore Lite, MINDIR on the CPU), single-video prediction and pooled features.
All of it reuses the one preprocessing (src.data.presets), the one metric (src.metrics) and the predictors
of src.inference.predictors."""
