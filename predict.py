"""Top-5 classes of one video (a .avi/.mp4 file or a frame folder), averaged over sliding windows.

    python predict.py --video=v.avi --ckpt_file=best.ckpt [--labels=ucf101_01.json|classInd.txt]
        [--onnx=model.onnx | --mindir=model.mindir] [--config_path=... --n_classes=... model keys]
"""
import sys

from src.config import load_config, run_main


def _main(argv):
    cfg = load_config(argv, prog="predict.py", extra={"video": "", "onnx": "", "mindir": "", "labels": ""})
    video, onnx, mindir, labels = cfg.video, cfg.onnx, cfg.mindir, cfg.labels
    from src.errors import UserError

    if not video:
        raise UserError("--video is required: a video file (.avi, .mp4, ...) or a folder of image_00001.jpg frames")
    from src.context import setup_from_config
    from src.deploy.predict import check_one_model

    check_one_model(cfg.ckpt_file, onnx, mindir)  # before touching a device

    device = cfg.device_target if not (onnx or mindir) else "CPU"  # exported models run via onnxruntime / CPU here
    setup_from_config({**cfg, "device_target": device, "conv_impl": "native"})
    from src.deploy.predict import format_top, make_predictor, predict_video, read_labels

    names = read_labels(labels) if labels else None
    predict = make_predictor(cfg, cfg.ckpt_file, onnx, mindir)
    scores, n_frames, n_windows = predict_video(predict, video, cfg)
    print(f"{video}: {n_frames} frames, {n_windows} windows of {cfg.sample_duration}")
    for line in format_top(scores, names):
        print(line)
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
