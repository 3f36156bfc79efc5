"""src/launch/run_demo.py: its first two stages for real (dataset, frames, annotation, check), the dataset reused
only when made with the same options, and a failed step's exit status (the whole demo: tests/test_demo.py)."""
from pathlib import Path

from src.launch.processes import run_launcher
from src.launch.run_demo import QUICK, STAGES, Demo, launch


def test_stages_are_numbered_as_the_seed_printed_them():
    assert len(STAGES) == 8 and STAGES[-1].__doc__ == "summary"


def test_dataset_made_once_then_reused(tmp_path, capfd):
    demo = Demo(tmp_path / "demo", quick=True)
    demo.dataset()
    demo.frames()
    out = capfd.readouterr().out
    assert "check_dataset: 32 videos (24 training, 8 validation), 8 classes, 32 ok, no problems" in out
    assert (demo.data / ".done").read_text() == " ".join(QUICK[0]) + "\n"
    assert demo.json.is_file() and len(list((demo.data / "videos").rglob("*.avi"))) == 32
    stamp = demo.json.stat().st_mtime_ns
    demo.dataset()
    assert capfd.readouterr().out == f"reusing {demo.data}\n" and demo.json.stat().st_mtime_ns == stamp
    (demo.data / ".done").write_text("--videos_per_class 5\n")  # made with other options: made afresh
    demo.dataset()
    assert "reusing" not in capfd.readouterr().out and not demo.json.exists()


def test_a_failed_step_ends_the_demo_with_its_status(tmp_path, capfd):
    out = tmp_path / "demo"
    (out / "data").mkdir(parents=True)
    (out / "data" / ".done").write_text(" ".join(QUICK[0]) + "\n")  # "reused", but there are no videos
    (out / "predict.txt").write_text("old")
    assert run_launcher(launch, [str(out), "--quick"]) != 0
    printed = capfd.readouterr().out
    assert "] 1/8 synthetic motion dataset" in printed and "] 2/8 frames" in printed and "3/8" not in printed
    assert not (out / "predict.txt").exists()  # the results are always made afresh
    assert Path(out / "data" / ".done").is_file()
