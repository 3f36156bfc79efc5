"""The closing summary of `make demo`: where everything is, and the accuracy reached."""
from pathlib import Path

from src.config import load_config
from src.rundir import RunDir
from src.cli import ArgumentParser


def _last_line(path, prefix):
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.startswith(prefix)] if Path(path).is_file() else []
    return lines[-1] if lines else "(not found)"


def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--config_path", required=True, help="the demo's config (its dataset names the files)")
    parser.add_argument("--seconds", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    dataset = load_config([f"--config_path={args.config_path}"]).dataset
    train, evaluation = RunDir(out / "train", dataset), RunDir(out / "eval", dataset)
    best = train.read_best_metrics()
    rows = [
        ("dataset (videos, frames, JSON)", out / "data"),
        ("checkpoints, best.ckpt", train.path),
        ("training log", train.train_log),
        ("training curves (loss, lr, val accuracy)", train.file("training_curves.png")),
        ("evaluation log, per-clip/per-video JSON", evaluation.path),
        ("confusion matrix", evaluation.eval_output("eval", "confusion.png")),
        ("exported models", out / "export"),
        ("INT8 model, its QDQ ONNX export, their evaluation", out / "int8"),
        ("prediction of one held-out video", out / "predict.txt"),
        ("its annotated video and class activation maps", out / "visual"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, path in rows:
        print(f"  {name:<{width}}  {path}")
    print(f"best epoch {best['epoch']}: {best['line']}")
    print(f"eval.py:      {_last_line(evaluation.eval_log, 'clip: ')}")
    print(f"eval_onnx.py: {_last_line(out / 'export' / 'eval_onnx.log', 'clip: ')}")
    print(f"INT8 eval.py:      {_last_line(RunDir(out / 'int8', dataset).eval_log, 'clip: ')}")
    print(f"INT8 eval_onnx.py: {_last_line(out / 'int8' / 'onnx' / 'eval_onnx.log', 'clip: ')}")
    minutes, seconds = divmod(args.seconds, 60)
    print(f"demo finished in {minutes} min {seconds} s: video top-1 {100 * best['top1']:.1f}% on "
          f"{best['n_ground_truth']} held-out videos")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
