"""predict.py --stream: a file and a real HTTP stream served on 127.0.0.1 give a file's windows and scores; real
time drops windows and says so; a stream that breaks, and a real Ctrl-C to a real process, end with the summary;
the annotated video of a stream."""
import csv
import functools
import http.server
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

import predict
from src.config import REPO_ROOT, load_config
from src.data.presets import ClipSpec, eval_windows
from src.deploy.predict import make_predictor
from src.deploy.stream import classify_stream, stream_spec
from src.deploy.stream_input import StreamWindows, open_capture, parse_source
from src.deploy.timeline import window_scores
from src.runtime import setup_runtime
from tests.helpers.media import write_noise_video
from tests.helpers.tiny import make_tiny_checkpoint, tiny_options

N_FRAMES = 42  # 4-frame windows every 4: 10 complete windows and a loop-padded 11th


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _BrokenMJPEG(http.server.BaseHTTPRequestHandler):
    """A live MJPEG stream (multipart/x-mixed-replace) that sends 10 frames, then drops the connection."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        rng = np.random.default_rng(0)
        for _ in range(10):
            _, jpg = cv2.imencode(".jpg", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                             + jpg.tobytes() + b"\r\n")
            time.sleep(0.01)
        self.connection.shutdown(2)  # no closing boundary: the stream breaks


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    video = write_noise_video(root / "www" / "v.avi", n_frames=N_FRAMES)
    server, base = _serve(functools.partial(_Quiet, directory=str(root / "www")))
    yield {"root": root, "ckpt": make_tiny_checkpoint(root / "tiny.ckpt"), "video": video, "url": f"{base}/v.avi"}
    server.shutdown()


def _predictor(media, *options):
    cfg = load_config(tiny_options() + [f"--ckpt_file={media['ckpt']}", "--device_target=CPU", *options],
                      extra=predict.OPTIONS)
    runtime = setup_runtime(cfg.placement, cfg.runtime, cfg.seed, cfg.infer_precision, device_target="CPU",
                            distributed=False)
    return cfg, make_predictor(media["ckpt"], "checkpoint", runtime, cfg.arch, cfg.data)


@pytest.mark.parametrize("size, step, stride, count", [(4, 1, 4, 42), (4, 2, 3, 37), (5, 1, 2, 3), (4, 3, 8, 100),
                                                       (4, 1, 4, 40), (4, 1, 4, 0)])
def test_stream_windows_are_eval_windows(size, step, stride, count):
    """Windows taken as frames arrive, then the padded tail at the end, are presets.eval_windows'."""
    spec = ClipSpec(sample_duration=size, sample_t_stride=step, inference_stride=stride)
    windows = StreamWindows(spec)
    tail = windows.tail(count)
    got = [windows.numbers(k) for k in range(windows.newest(count) + 1)] + ([tail[1]] if tail else [])
    assert got == eval_windows(count, spec)
    assert all(max(n) - min(n) < windows.ring_size for n in got)


def test_ring_frames_read_as_a_video_file(tmp_path):
    """The ring hands a window's frames to eval_clip as VideoFile does, reduced decodes included."""
    from src.data.video import VideoFile
    from src.deploy.stream_input import RingFrames

    video = write_noise_video(tmp_path / "big.avi", n_frames=6, size=(160, 128))
    cap = cv2.VideoCapture(str(video))
    frames = {n: cap.read()[1] for n in range(1, 7)}
    cap.release()
    ring, file = RingFrames(frames), VideoFile(video)
    assert ring.frame_size(1) == file.frame_size(1) == (128, 160)
    for reduce in (1, 2, 4):
        got, want = ring.read([2, 3, 3, 6], reduce)[0], file.read([2, 3, 3, 6], reduce)[0]
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), reduce


@pytest.mark.parametrize("options", [[], ["--sample_t_stride=2", "--inference_stride=3", "--test_crops=3"]],
                         ids=["tiny", "t_stride2-stride3-3crops"])
def test_file_and_http_streams_agree_with_the_timeline(media, options, capsys):
    """The agreement: a file read as a stream, and the same file served over HTTP, give the windows of
    predict.py --timeline on the file, with the same scores (to 1e-4)."""
    cfg, predict_fn = _predictor(media, *options)
    spec = ClipSpec.of(cfg.data, cfg.evaluation)
    expected, _ = window_scores(predict_fn, media["video"], spec, cfg.eval_batch_size)
    for source in (str(media["video"]), media["url"]):
        cap = open_capture(parse_source(source))
        run = classify_stream(predict_fn, cap, stream_spec(spec), 25.0)
        assert not cap.isOpened() and run.ended == "ended" and run.frames == N_FRAMES and run.dropped == 0
        assert [n for n, _ in run.windows] == [n for n, _ in expected], source
        diff = max(np.abs(s - e).max() for (_, s), (_, e) in zip(run.windows, expected))
        assert diff < 1e-4, (source, diff)
    assert f"window {len(expected) - 1}  frames " in capsys.readouterr().out


def _slow_predict(clips):
    time.sleep(0.05)
    return np.full((len(clips), 8), 1 / 8, np.float32)


def test_real_time_drops_windows_and_says_so(media, capsys):
    """Inference slower than a real-time stream: the newest complete window is taken, the others counted."""
    cap = open_capture(parse_source(str(media["video"])))
    spec = ClipSpec(sample_size=32, sample_duration=4, inference_stride=4)
    run = classify_stream(_slow_predict, cap, spec, fps=400.0, realtime=True)  # a window every 10 ms
    assert run.frames == N_FRAMES and run.dropped > 0 and len(run.windows) + run.dropped == 11
    assert run.windows[-1][0] == eval_windows(N_FRAMES, spec)[-1]  # the padded tail closes the stream
    text = capsys.readouterr().out
    assert "dropped before it" in text


def test_predict_stream_of_a_url(media, tmp_path, capsys):
    """predict.py --stream=http://...: one line per window, the summary, the timeline of a file's columns and
    rows, the annotated video, the log."""
    timeline, annotated = tmp_path / "t" / "stream.csv", tmp_path / "stream.mp4"
    common = [f"--ckpt_file={media['ckpt']}", "--device_target=CPU"] + tiny_options()
    assert predict.main(common + [f"--stream={media['url']}", f"--timeline={timeline}",
                                  f"--annotate={annotated}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"stream {media['url']}: 25 frames/s")
    assert "real time, read at its frame rate" in lines[0]  # a file served over HTTP: paced like a live source
    windows = [line for line in lines if line.startswith("window ")]
    summary = next(line for line in lines if line.startswith(f"stream {media['url']} ended: {N_FRAMES} frames"))
    assert "frames/s" in summary and "latency mean" in lines[lines.index(summary) + 1]
    assert f"{len(windows)} of 11 classified" in lines[lines.index(summary) + 1]
    assert predict.main(common + [f"--video={media['video']}", f"--timeline={tmp_path / 'file.csv'}"]) == 0
    capsys.readouterr()
    stream_rows, file_rows = (list(csv.DictReader(open(p, newline=""))) for p in (timeline, tmp_path / "file.csv"))
    assert list(stream_rows[0]) == list(file_rows[0]) and len(stream_rows) == len(windows)
    by_first = {row["first_frame"]: row for row in file_rows}
    for row in stream_rows:  # real time: a window dropped on a busy machine is missing, never different
        same = by_first[row["first_frame"]]
        assert row["last_frame"] == same["last_frame"] and row["class1"] == same["class1"]
        assert abs(float(row["p1"]) - float(same["p1"])) <= 1.01e-4
    assert timeline.with_suffix(".png").is_file() and (timeline.parent / "ucf101_predict.log").is_file()
    cap = cv2.VideoCapture(str(annotated))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    cap.release()


def test_a_stream_that_breaks_ends_with_its_summary(media, capsys):
    server, base = _serve(_BrokenMJPEG)
    try:
        code = predict.main([f"--stream={base}/live.mjpg", f"--ckpt_file={media['ckpt']}", "--device_target=CPU"]
                            + tiny_options())
    finally:
        server.shutdown()
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err
    first = captured.out.splitlines()[0]  # live (no length): read as it arrives, not paced at a guessed rate
    assert "real time: windows dropped" in first and "read at its frame rate" not in first
    assert f"stream {base}/live.mjpg ended: 10 frames" in captured.out
    assert "windows: 3 of 3 classified" in captured.out or "dropped" in captured.out  # 2 whole, 1 padded


def test_ctrl_c_ends_a_real_process_with_its_summary(media, tmp_path):
    """A real SIGINT to a real predict.py reading a stream in real time: exit 0, the summary, the timeline."""
    long_video = write_noise_video(tmp_path / "long.avi", n_frames=400)
    timeline = tmp_path / "t.csv"
    command = [sys.executable, "predict.py", f"--stream={long_video}", "--stream_realtime=True", "--fps=20",
               f"--ckpt_file={media['ckpt']}", f"--timeline={timeline}", "--device_target=CPU"] + tiny_options()
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        while not any(line.startswith("window 1 ") for line in lines):  # 20 s of stream: well before its end
            line = proc.stdout.readline()
            assert line, proc.stderr.read()[-2000:]
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "interrupted (Ctrl-C)" in rest and "latency mean" in rest
    assert timeline.is_file() and timeline.with_suffix(".png").is_file()


@pytest.mark.parametrize("option, message", [
    ("--stream=9", "camera 9 cannot be opened"),
    ("--stream=http://127.0.0.1:1/v.avi", "cannot be opened: check the address"),
    ("--stream=missing.avi", "neither a camera index, a URL"),
    ("--annotate=out.gif", "write an .mp4 (mp4v) or an .avi (MJPG)"),
    ("--stream_realtime=sometimes", "must be auto, True or False"),
])
def test_stream_errors(media, capsys, option, message):
    stream = [] if option.startswith("--stream=") else [f"--stream={media['video']}"]
    code = predict.main([option, *stream, f"--ckpt_file={media['ckpt']}", "--device_target=CPU"] + tiny_options())
    assert code == 2 and message in capsys.readouterr().err


def test_video_and_stream_together_is_an_error(media, capsys):
    assert predict.main([f"--video={media['video']}", f"--stream={media['video']}",
                         f"--ckpt_file={media['ckpt']}"] + tiny_options()) == 2
    assert "not both" in capsys.readouterr().err
