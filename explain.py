"""Where the network looks: Grad-CAM of one video's predicted class (or --class_name) at one stage.

    python explain.py --video=v.avi --ckpt_file=best.ckpt|result_folder [--cam_layer=layer4] [--class_name=X]
        [--labels=classInd.txt] [--result_path=DIR]
writes into --result_path <video>_<layer>_cam.npy (the map, frames x H x W, 0..1), .mp4 (the map over the
clip's frames) and .png (key frames). More: docs/explain.md.
"""
import sys

from src.cli import run_main
from src.config import EVAL_SECTIONS, load_config
from src.config_keys import Key
from src.deploy.cam import STAGES

OPTIONS = {
    "video": Key("", "The video to explain: a video file (.avi, .mp4, ...) or a folder of image_00001.jpg frames."),
    "cam_layer": Key("layer4", "The stage whose activation the map is made of (conv1 = the stem's output).",
                     choices=STAGES),
    "class_name": Key("", "The class to explain (a class name, or its index); default: the predicted class."),
    "labels": Key("", "Class names: an annotation JSON or classInd.txt. Default: the names the model carries."),
    "fps": Key(0.0, "Frames per second of the overlay video; 0 = the video's (25 for frame folders)."),
}


def _main(argv):
    cfg = load_config(argv, prog="explain.py", extra=OPTIONS, sections=(*EVAL_SECTIONS, "export"))
    from src.errors import UserError
    from src.weights.model_file import use_model

    if not cfg.video:
        raise UserError("--video is required: a video file (.avi, .mp4, ...) or a folder of image_00001.jpg frames")
    # the model's own settings (architecture, clip size and length, views, class names) replace the config's
    cfg, model = use_model(cfg, cfg.ckpt_file, "ckpt_file")
    if model.kind != "checkpoint":
        raise UserError(f"--ckpt_file={model.path}: Grad-CAM needs the network's gradients, so a checkpoint "
                        f"(.ckpt) or a result folder, not an exported {model.kind.upper()} model")
    return _explain(cfg, model)


def _explain(cfg, model):
    from src.data.presets import ClipSpec
    from src.deploy.cam import class_index, explain_video, output_paths, write_outputs
    from src.deploy.predict import read_labels
    from src.logs import out
    from src.models.factory import build_model
    from src.runtime import setup_runtime
    from src.weights.checkpoint import load_strict

    names = read_labels(cfg.labels) if cfg.labels else (model.record.class_names if model.record else None)
    chosen = class_index(cfg.class_name, names, cfg.n_classes)
    # gradients of the plain network (native convolutions, no folded BatchNorm), op by op
    setup_runtime(cfg.placement, cfg.runtime, cfg.seed, "fp32", mode="PYNATIVE", conv_impl="native", distributed=False)
    net = build_model(cfg.arch, conv_impl="native")
    load_strict(net, model.path)
    spec = ClipSpec.of(cfg.data, cfg.evaluation)
    found = explain_video(net, cfg.video, spec, cfg.eval_batch_size, cfg.cam_layer, chosen)
    name = names[found.class_index] if names else f"class {found.class_index}"
    best = int(found.scores.argmax())
    out.info(f"{cfg.video}: {found.n_frames} frames, {len(found.windows)} windows of {cfg.sample_duration}")
    out.info(f"predicted: {names[best] if names else f'class {best}'}  {found.scores[best]:.4f}")
    channels, t, h, w = found.stage_shape
    out.info(f"Grad-CAM of {name} ({found.scores[found.class_index]:.4f}) at {cfg.cam_layer}: {channels} "
             f"channels of {t}x{h}x{w}")
    npy, mp4, png = paths = output_paths(cfg.result_path, cfg.video, cfg.cam_layer)
    n_keys = write_outputs(found, cfg.video, paths, cfg.eval_batch_size, cfg.fps)
    frames = len(found.windows) * cfg.sample_duration
    out.info(f"cam volume: {frames}x{cfg.sample_size}x{cfg.sample_size} (0..1) -> {npy}")
    out.info(f"overlay video: {frames} frames -> {mp4}")
    out.info(f"key frames: {n_keys} -> {png}")
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
