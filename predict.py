"""Top-5 classes of one video (a .avi/.mp4 file or a frame folder), averaged over sliding windows.

    python predict.py --video=v.avi --ckpt_file=best.ckpt [--labels=ucf101_01.json|classInd.txt]
        [--onnx_path=model.onnx | --mindir_path=model.mindir] [--config_path=... --n_classes=... model keys]
        [--timeline=timeline.csv [--fps=25]]   per-window top-5 with times (CSV) and a PNG timeline
Everything printed is also appended to <dataset>_predict.log beside the timeline, or in --result_path when
one is given.
"""
import sys

from src.cli import run_main
from src.config import EVAL_SECTIONS, load_config
from src.config_keys import Key

OPTIONS = {
    "video": Key("", "The video to classify: a video file (.avi, .mp4, ...) or a folder of image_00001.jpg frames."),
    "mindir_path": Key("", "An exported MINDIR model to run (MindSpore on the CPU) instead of a checkpoint."),
    "labels": Key("", "Class names: an annotation JSON or classInd.txt. Default: the names the model carries."),
    "timeline": Key("", "Also write per-window top-5 with times to this CSV, and a PNG timeline beside it."),
    "fps": Key(0.0, "Frames per second for the timeline's times; 0 = read from the video (25 for frame folders)."),
}
DEPRECATED = {"onnx": ("onnx_path", "deprecated"), "mindir": ("mindir_path", "deprecated")}


def _main(argv):
    cfg = load_config(argv, prog="predict.py", extra=OPTIONS, aliases=DEPRECATED, sections=(*EVAL_SECTIONS, "export"))
    from src.deploy.predict import check_one_model
    from src.errors import UserError
    from src.logs import log_file

    if not cfg.video:
        raise UserError("--video is required: a video file (.avi, .mp4, ...) or a folder of image_00001.jpg frames")
    check_one_model(cfg.ckpt_file, cfg.onnx_path, cfg.mindir_path)  # before touching a device
    from src.weights.model_file import use_model

    # the model's own settings (architecture, clip size and length, views, class names) replace the config's
    option = next(o for o in ("onnx_path", "mindir_path", "ckpt_file") if cfg[o])
    cfg, model = use_model(cfg, cfg[option], option)
    log = _log_path(cfg)
    if log is None:
        return _predict(cfg, model)
    with log_file(log, f"predict.py {' '.join(sys.argv[1:] if argv is None else argv)}"):
        return _predict(cfg, model)


def _log_path(cfg):
    """Where the log goes: beside the timeline, or in a --result_path given on the command line; None (the
    console only) when predict.py writes no file."""
    from pathlib import Path

    if cfg.timeline:
        return Path(cfg.timeline).parent / f"{cfg.dataset}_predict.log"
    if "result_path" in cfg.explicit:
        return Path(cfg.result_path) / f"{cfg.dataset}_predict.log"
    return None


def _predict(cfg, model):
    from src.data.presets import ClipSpec, views_label
    from src.deploy.predict import format_top, make_predictor, predict_video, read_labels
    from src.logs import out
    from src.runtime import setup_runtime

    exported = bool(cfg.onnx_path or cfg.mindir_path)  # exported models run via onnxruntime / on the CPU here
    runtime = setup_runtime(cfg, device_target="CPU" if exported else None, distributed=False,
                            infer_precision="fp32" if exported else None)
    names = read_labels(cfg.labels) if cfg.labels else (model.record.class_names if model.record else None)
    predict = make_predictor(cfg, runtime, model.path)
    scores, n_frames, n_views = predict_video(predict, cfg.video, cfg)
    label = views_label(ClipSpec.from_config(cfg))
    views = f"{n_views} views ({label})" if label else f"{n_views} windows"
    out.info(f"{cfg.video}: {n_frames} frames, {views} of {cfg.sample_duration}")
    for line in format_top(scores, names):
        out.info(line)
    if cfg.timeline:
        from src.deploy.timeline import video_fps, window_scores, write_timeline

        windows, _ = window_scores(predict, cfg.video, cfg)
        csv_path, png = write_timeline(windows, names, video_fps(cfg.video, cfg.fps), cfg.timeline)
        out.info(f"timeline: {len(windows)} windows -> {csv_path}, {png}")
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
