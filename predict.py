"""Top-5 classes of one video (a .avi/.mp4 file or a frame folder), averaged over sliding windows; or a stream
(a camera, a URL, a file read as a stream) classified window by window as it arrives.

    python predict.py --video=v.avi --ckpt_file=best.ckpt [--labels=ucf101_01.json|classInd.txt]
        [--onnx_path=model.onnx | --mindir_path=model.mindir] [--config_path=... --n_classes=... model keys]
        [--timeline=timeline.csv [--fps=25]]   per-window top-5 with times (CSV) and a PNG timeline
        [--annotate=out.mp4]                   the video with the top classes drawn on every frame
    python predict.py --stream=0|rtsp://...|http://...|v.avi --ckpt_file=best.ckpt [--stream_realtime=auto]
        [--timeline=timeline.csv] [--annotate=out.mp4]   one line per window; Ctrl-C ends with the summary
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
    "stream": Key("", "Classify a stream window by window as it arrives: a camera index (0), a URL (http://, "
                      "rtsp://: what OpenCV's FFmpeg opens) or a video file read as a stream. See docs/streams.md."),
    "stream_realtime": Key("auto", "Keep up with the stream, dropping windows (counted) when inference is slower: "
                                   "auto = yes for cameras and URLs, no for files (every window classified).",
                           check=lambda v: None if str(v).lower() in ("auto", "true", "false", "yes", "no", "1", "0",
                                                                      "on", "off") else "must be auto, True or False"),
    "annotate": Key("", "Also write the input (video or stream) with the top classes drawn on each frame: "
                        "OUT.mp4 (mp4v) or OUT.avi (MJPG)."),
}
DEPRECATED = {"onnx": ("onnx_path", "deprecated"), "mindir": ("mindir_path", "deprecated")}


def _main(argv):
    cfg = load_config(argv, prog="predict.py", extra=OPTIONS, aliases=DEPRECATED, sections=(*EVAL_SECTIONS, "export"))
    from src.deploy.predict import check_one_model
    from src.errors import UserError
    from src.logs import log_file

    if bool(cfg.video) == bool(str(cfg.stream)):
        raise UserError("pass --video or --stream, not both" if cfg.video else "--video is required: a video file "
                        "(.avi, .mp4, ...) or a folder of image_00001.jpg frames (or --stream for a stream)")
    _check_outputs(cfg)
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


def _check_outputs(cfg):
    """What can be refused before a model is loaded: the stream's source, the annotated video's name."""
    if str(cfg.stream):
        from src.deploy.stream import parse_source

        parse_source(cfg.stream)
    if cfg.annotate:
        from src.deploy.annotate import check_output

        check_output(cfg.annotate)


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
    from src.deploy.predict import format_top, make_predictor, predict_clips, read_labels
    from src.logs import out
    from src.runtime import setup_runtime

    exported = bool(cfg.onnx_path or cfg.mindir_path)  # exported models run via onnxruntime / on the CPU here
    runtime = setup_runtime(cfg.placement, cfg.runtime, cfg.seed, "fp32" if exported else cfg.infer_precision,
                            device_target="CPU" if exported else None, distributed=False)
    names = read_labels(cfg.labels) if cfg.labels else (model.record.class_names if model.record else None)
    kind = "onnx" if cfg.onnx_path else "mindir" if cfg.mindir_path else "checkpoint"
    predict = make_predictor(model.path, kind, runtime, cfg.arch, cfg.data, cfg.device_target,
                             device_given="device_target" in cfg.explicit)
    spec = ClipSpec.of(cfg.data, cfg.evaluation)
    if str(cfg.stream):
        from src.deploy.stream import predict_stream

        predict_stream(cfg.stream, spec, predict, names, fps=cfg.fps,
                       realtime=cfg.stream_realtime, annotate=cfg.annotate, timeline=cfg.timeline)
        return 0
    scores, n_frames, n_views = predict_clips(predict, cfg.video, spec, cfg.eval_batch_size)
    label = views_label(spec)
    views = f"{n_views} views ({label})" if label else f"{n_views} windows"
    out.info(f"{cfg.video}: {n_frames} frames, {views} of {cfg.sample_duration}")
    for line in format_top(scores, names):
        out.info(line)
    if cfg.timeline or cfg.annotate:
        _window_outputs(cfg, predict, names, spec)
    return 0


def _window_outputs(cfg, predict, names, spec):
    """--timeline and --annotate of a video: its windows' scores (clips by ``spec``), computed once for both."""
    from src.data.layout import open_video
    from src.deploy.timeline import video_fps, window_scores, write_timeline
    from src.logs import out

    windows, _ = window_scores(predict, cfg.video, spec, cfg.eval_batch_size)
    fps = video_fps(cfg.video, cfg.fps)
    if cfg.timeline:
        csv_path, png = write_timeline(windows, names, fps, cfg.timeline)
        out.info(f"timeline: {len(windows)} windows -> {csv_path}, {png}")
    if cfg.annotate:
        from src.deploy.annotate import annotate_file

        frames = annotate_file(open_video(cfg.video), windows, names, fps, cfg.annotate)
        out.info(f"annotated video: {frames} frames -> {cfg.annotate}")


def main(argv=None):
    try:
        return run_main(_main, argv)
    except KeyboardInterrupt:  # Ctrl-C before a stream runs (a running stream ends with its summary instead)
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    from src.train.signals import deliver_sigint_to_python

    deliver_sigint_to_python()  # before mindspore is imported: Ctrl-C ends a stream with its summary
    sys.exit(main())
