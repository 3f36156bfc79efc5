"""Tiny workspaces for the tests: synthetic videos -> frames -> annotation
JSON -> a random-weight checkpoint of a small network, built with the suite's own data commands."""
from pathlib import Path

# small enough for 2 CPU cores: depth 10, widen 0.125, 4-frame 32x32 clips, 8 synthetic classes
TINY_MODEL = {"model_depth": 10, "widen_factor": 0.125, "n_classes": 8, "sample_size": 32,
              "sample_duration": 4, "inference_stride": 4, "eval_batch_size": 3, "num_workers": 1}


def tiny_args(**overrides):
    """--key=value options of TINY_MODEL (plus overrides) for the entry scripts."""
    values = {**TINY_MODEL, **overrides}
    return [f"--{k}={v}" for k, v in values.items()]


def make_dataset(root, videos_per_class=1, test_videos_per_class=1, frames=10, size=40):
    """Write videos/, jpg/, labels/ and json/ucf101_01.json under ``root``. Returns (jpg, json) paths."""
    from src.data.extract import extract_all
    from src.data.synthetic import generate
    from src.data.annotations import main as annotations_main

    root = Path(root)
    generate(root, videos_per_class=videos_per_class, test_videos_per_class=test_videos_per_class, frames=frames,
             size=size, seed=0, n_jobs=1, progress=False)
    extract_all(str(root / "videos"), str(root / "jpg"), 0, 90, 1, False)
    code = annotations_main("ucf101", ["--dir_path", str(root / "labels"), "--video_path", str(root / "jpg"),
                                       "--dst_dir_path", str(root / "json")])
    if code not in (0, None):
        raise RuntimeError(f"annotation generation failed with exit code {code}")
    return root / "jpg", root / "json" / "ucf101_01.json"


def make_checkpoint(path, seed=0, fc_scale=20.0, **model_overrides):
    """Random weights of the tiny model saved to ``path``: non-trivial BN statistics, and an fc scaled by
    ``fc_scale`` so predictions are confident (no near-ties that float rounding could flip)."""
    import mindspore as ms
    import numpy as np

    from src.config import Config, load_config
    from src.models.resnet3d import ModelSpec, build_model
    from src.weights.checkpoint import save_checkpoint

    cfg = Config(load_config([]))
    cfg.update({**TINY_MODEL, **model_overrides})
    ms.set_seed(seed)
    net = build_model(ModelSpec.from_config(cfg))
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        if p.name.endswith(("moving_mean", "beta")):
            p.set_data(ms.Tensor(rng.normal(0, 0.1, p.shape).astype(np.float32)))
        elif p.name.endswith("moving_variance"):
            p.set_data(ms.Tensor(rng.uniform(0.5, 1.5, p.shape).astype(np.float32)))
        elif p.name == "fc.weight":
            p.set_data(p.data * fc_scale)
    save_checkpoint(net, path)
    return Path(path)
