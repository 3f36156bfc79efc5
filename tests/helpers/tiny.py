"""The one tiny configuration of the suite, and tiny workspaces built with the suite's own data commands:
synthetic videos -> frames -> annotation JSON, and a random-weight checkpoint of the tiny network."""
from pathlib import Path

# small enough for 2 CPU cores: depth 10, widen 0.125, 4-frame 32x32 clips, 8 synthetic classes
TINY = {"model_depth": 10, "widen_factor": 0.125, "n_classes": 8, "sample_size": 32,
        "sample_duration": 4, "inference_stride": 4, "eval_batch_size": 3, "num_workers": 1}

# data-pipeline tests add these to TINY: 2-clip training batches and a fixed seed
TINY_DATA = {"batch_size": 2, "seed": 7}


def tiny_options(**overrides):
    """--key=value options of TINY (plus overrides) for the entry scripts."""
    values = {**TINY, **overrides}
    return [f"--{k}={v}" for k, v in values.items()]


# the options of a tiny CPU run on the synthetic dataset (data paths and result folder still to add)
TINY_RUN_OPTIONS = ["--device_target=CPU", "--dataset=synthetic"] + tiny_options(eval_batch_size=8)


def tiny_run_args(data, result, *extra):
    """TINY_RUN_OPTIONS on ``data`` ({"video_path", "annotation_path"}) writing into ``result``, then ``extra``."""
    return TINY_RUN_OPTIONS + [f"--video_path={data['video_path']}", f"--annotation_path={data['annotation_path']}",
                               f"--result_path={result}", *extra]


def tiny_data_config(annotation_path="", video_path="", **overrides):
    """The UCF101 config with TINY's clips and TINY_DATA; ``overrides`` become --key=value options."""
    from src.config import load_config

    values = {"annotation_path": annotation_path, "video_path": video_path, **TINY_DATA, **overrides}
    return load_config(tiny_options(**values))


def tiny_train_dataset(cfg, epoch, rank_id=0, rank_size=1, skip_batches=0):
    """create_train_dataset with cfg's values, as the trainer calls it."""
    from src.data.datasets import create_train_dataset, train_entries
    from src.data.presets import ClipSpec

    entries, _ = train_entries(cfg.paths, cfg.data, cfg.arch)
    return create_train_dataset(entries, ClipSpec.of(cfg.data, cfg.evaluation), cfg.seed, cfg.batch_size, epoch,
                                cfg.num_workers, rank_id, rank_size, skip_batches)


def tiny_eval_dataset(cfg, rank_id=0, rank_size=1):
    """eval_dataset_of with cfg's sections and values, as evaluation calls it."""
    from src.data.datasets import eval_dataset_of

    return eval_dataset_of(cfg.paths, cfg.data, cfg.arch, cfg.evaluation, cfg.eval_batch_size, cfg.num_workers,
                           rank_id, rank_size)


def make_tiny_dataset(root, videos_per_class=1, test_videos_per_class=1, frames=10, size=40):
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


def make_tiny_checkpoint(path, seed=0, fc_scale=20.0, **model_overrides):
    """Random weights of the tiny model saved to ``path``: non-trivial BN statistics, and an fc scaled by
    ``fc_scale`` so predictions are confident (no near-ties that float rounding could flip)."""
    import mindspore as ms
    import numpy as np

    from src.config import load_config
    from src.models.factory import build_model
    from src.weights.checkpoint import save_checkpoint

    cfg = load_config(tiny_options(**model_overrides))
    ms.set_seed(seed)
    net = build_model(cfg.arch)
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


def checkpoint_tensors(path):
    """The tensors of a checkpoint as NumPy arrays (its config string and other metadata left out)."""
    import mindspore as ms

    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if not isinstance(v, str)}
