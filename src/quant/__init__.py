"""INT8 post-training quantization (issue 30): the description of the quantized network and its model file
(src.quant.model), the wiring it is read from (src.quant.wiring) and the calibration (src.quant.calibrate)."""
