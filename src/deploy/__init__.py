"""Deployment: export (MINDIR / AIR / ONNX) with parity checks, ONNX / MINDIR inference backends,
Ascend-310 pre/post-processing and single-video prediction. All of it reuses the one preprocessing
(src.data.presets) and the one metric (src.eval.metrics)."""
