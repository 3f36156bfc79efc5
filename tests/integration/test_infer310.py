"""Ascend-310 flow without an Ascend: preprocess -> MINDIR (Python API) -> postprocess == eval.py;
the C++ program (MindSpore Lite API) compiled against the API headers, its helpers compiled and run;
the lite-python backend up to where MindSpore Lite is needed. (run_infer_310.sh's whole run with the
MINDIR Python backend is in tests/e2e/test_deploy_agreement.py.)"""
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import postprocess
import preprocess
from src.config import REPO_ROOT
from src.deploy import lite
from src.deploy.infer310 import read_manifest, result_name
from src.deploy.mindir_python import main as main_mindir
from tests.helpers.scripts import TEST_DATA, run_script

INFER_DIR = REPO_ROOT / "ascend310_infer"
LITE_API_HEADERS = TEST_DATA / "lite_api_headers"
GXX = shutil.which("g++")
needs_gxx = pytest.mark.skipif(GXX is None, reason="g++ is not installed: the C++ checks need it")
LITE_INSTALLED = importlib.util.find_spec("mindspore_lite") is not None


def test_pre_run_post_equals_eval(infer310_workspace, infer310_eval_lines, tmp_path, capsys):
    pre, res = tmp_path / "pre", tmp_path / "res"
    assert preprocess.main(infer310_workspace["args"] + [f"--output_path={pre}", "--batch_size=1"]) == 0
    manifest = read_manifest(pre)
    assert manifest["shape"] == [1, 3, 4, 32, 32] and len(manifest["clips"]) == 24
    assert len(list((pre / "data").glob("*.bin"))) == 24
    assert main_mindir([f"--mindir_path={infer310_workspace['mindir']}", f"--dataset_path={pre / 'data'}",
                        f"--result_path={res}"]) == 0
    first = np.fromfile(res / result_name(manifest["clips"][0]["name"]), np.float32)
    assert first.shape == (8,) and abs(float(first.sum()) - 1) < 1e-5
    capsys.readouterr()
    assert postprocess.main(infer310_workspace["model_args"] + [f"--pre_path={pre}", f"--result_dir={res}"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == infer310_eval_lines


def test_clips_round_trip_through_bin_files(infer310_workspace, tmp_path):
    """A .bin holds exactly the eval dataset's clip (same preprocessing, float32, C order)."""
    from src.config import load_config
    from tests.helpers.tiny import tiny_eval_dataset

    pre = tmp_path / "pre"
    assert preprocess.main(infer310_workspace["args"] + [f"--output_path={pre}"]) == 0
    cfg = load_config(infer310_workspace["args"])
    batch = next(tiny_eval_dataset(cfg)[0].create_dict_iterator(num_epochs=1, output_numpy=True))
    clip = np.fromfile(pre / "data" / "clip_0000001.bin", np.float32).reshape(1, 3, 4, 32, 32)
    np.testing.assert_array_equal(clip[0], batch["clip"][1])
    entry = read_manifest(pre)["clips"][1]
    assert (entry["video_index"], entry["window_index"], entry["label"]) == (
        int(batch["video_index"][1]), int(batch["window_index"][1]), int(batch["label"][1]))


def test_postprocess_errors(infer310_workspace, tmp_path, capsys):
    assert postprocess.main([f"--pre_path={tmp_path / 'none'}"]) == 2
    assert "run preprocess.py first" in capsys.readouterr().err
    pre = tmp_path / "pre"
    pre.mkdir()
    (pre / "manifest.json").write_text(json.dumps({"shape": [1, 3, 4, 32, 32], "class_names": ["a", "b"],
                                                    "videos": [["v", 0]], "clips": [
                                                        {"name": "clip_0000000", "video_index": 0,
                                                         "window_index": 0, "label": 0}]}))
    assert postprocess.main([f"--pre_path={pre}", f"--result_dir={tmp_path / 'res'}"]) == 2
    assert "result files are missing" in capsys.readouterr().err


# --- the manifest, checked whole before any number: each defect is one error line, and nothing is scored ---

def good_manifest():
    return {"shape": [1, 3, 4, 32, 32], "dtype": "float32", "class_names": ["a", "b", "c"],
            "videos": [["v0", 0], ["v1", 2]], "views": "",
            "clips": [{"name": "clip_0000000", "video_index": 0, "window_index": 0, "label": 0},
                      {"name": "clip_0000001", "video_index": 0, "window_index": 1, "label": 0},
                      {"name": "clip_0000002", "video_index": 1, "window_index": 0, "label": 2}]}


def write_run(tmp_path, manifest):
    """A preprocess_Result folder with ``manifest`` (a dict, or the file's text) and the result files of
    good_manifest's clips (3 classes: clips 0 and 2 right, clip 1 wrong)."""
    pre, res = tmp_path / "pre", tmp_path / "res"
    pre.mkdir()
    res.mkdir()
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (pre / "manifest.json").write_text(text, encoding="utf-8")
    for i, probs in enumerate(([0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8])):
        np.asarray(probs, np.float32).tofile(res / result_name(f"clip_{i:07d}"))
    return [f"--pre_path={pre}", f"--result_dir={res}", "--n_classes=3"], pre / "manifest.json"


def test_postprocess_scores_a_good_manifest(tmp_path, capsys):
    args, _ = write_run(tmp_path, good_manifest())
    assert postprocess.main(args) == 0
    out = capsys.readouterr().out
    assert "videos: ground truth 2, predicted 2, missing 0; clips: 3" in out


RERUN = "run preprocess.py again (NEED_PREPROCESS=y)"
UNLABELLED = "the accuracy needs labelled videos: run preprocess.py again on a labelled subset (--eval_subset)"


def change(**edits):
    """A manifest edit: ``key=value`` sets a key (``path`` spelled with __: clips__1__label), None deletes it."""
    def edit(manifest):
        for path, value in edits.items():
            *parents, last = [int(p) if p.isdigit() else p for p in path.split("__")]
            target = manifest
            for part in parents:
                target = target[part]
            if value is None:
                del target[last]
            else:
                target[last] = value
        return manifest
    return edit


@pytest.mark.parametrize("edit, message", [
    (change(clips=None), f"clips: missing; {RERUN}"),
    (change(class_names=None), f"class_names: missing; {RERUN}"),
    (change(clips__0__video_index=None), f"clips[0].video_index: missing; {RERUN}"),
    (change(videos__1__1=-1, clips__2__label=-1), f"videos[1][1]: -1 is not a class of class_names (0 to 2); "
                                                  f"{UNLABELLED}"),
    (change(clips__2__label=-1), f"clips[2].label: -1 is not a class of class_names (0 to 2); {UNLABELLED}"),
    (change(videos__0__1=3), f"videos[0][1]: 3 is not a class of class_names (0 to 2); {UNLABELLED}"),
    (change(clips__1__label="0"), f"clips[1].label: '0' is not an integer; {RERUN}"),
    (change(clips__1__label=True), f"clips[1].label: True is not an integer; {RERUN}"),
    (change(clips__1__label=0.0), f"clips[1].label: 0.0 is not an integer; {RERUN}"),
    (change(clips__2__label=1), f"clips[2].label: 1 is not the label of its video (videos[1]: 2); {RERUN}"),
    (change(clips__2__video_index=2), f"clips[2].video_index: 2 is not a video of videos (0 to 1); {RERUN}"),
    (change(clips__2__video_index=-1), f"clips[2].video_index: -1 is not a video of videos (0 to 1); {RERUN}"),
    (change(clips__0__window_index=-3), f"clips[0].window_index: -3 is negative; {RERUN}"),
    (change(clips__1__name="clip_0000000"), f"clips[1].name: 'clip_0000000' is the name of clips[0] too; {RERUN}"),
    (change(clips__0__name="../../etc/passwd"), f"clips[0].name: '../../etc/passwd' is not a plain file name; "
                                                f"{RERUN}"),
    (change(clips__0__name="clip\x1b[2J\r"), f"clips[0].name: 'clip\\x1b[2J\\r' is not a plain file name; {RERUN}"),
    (change(class_names__1={"x": 1}), f"class_names[1]: {{'x': 1}} is not a string; {RERUN}"),
    (change(videos__0="v0"), f"videos[0]: 'v0' is not a list; {RERUN}"),
    (change(videos__0=["v0"]), f"videos[0][1]: missing; {RERUN}"),
    (change(clips__1="clip_0000001"), f"clips[1]: 'clip_0000001' is not an object; {RERUN}"),
    (change(clips=[]), f"clips: empty, no clip to score; {RERUN}"),
    (change(shape=[1, 3, 4, 32]), f"shape: [1, 3, 4, 32] is not 5 positive integers [1, C, T, H, W]; {RERUN}"),
    (change(dtype="float16"), f"dtype: 'float16' is not 'float32'; {RERUN}"),
    (change(views=["x" * 100]), f"views: ['{'x' * 55}... is not a string; {RERUN}"),
    (lambda manifest: [manifest], f"(top level): {repr([good_manifest()])[:57]}... is not an object; {RERUN}"),
])
def test_postprocess_names_each_manifest_defect_in_one_line(tmp_path, capsys, edit, message):
    args, path = write_run(tmp_path, edit(good_manifest()))
    assert postprocess.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: {path}: {message}\n"  # no traceback, no accuracy
    assert "\x1b" not in err and "\r" not in err


@pytest.mark.parametrize("text, message", [
    ("{\"clips\": [", "not valid JSON (Expecting value: line 1 column 12 (char 11))"),
    (b"\xff\xfe".decode("latin-1"), "not valid JSON"),
])
def test_postprocess_names_a_manifest_that_is_not_json(tmp_path, capsys, text, message):
    args, path = write_run(tmp_path, text)
    (path).write_bytes(text.encode("latin-1"))
    assert postprocess.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: {path}: {message}") and err.endswith(f"; {RERUN}\n")
    assert err.count("\n") == 1


def test_run_infer_310_sh_with_a_bad_manifest_says_it_once(infer310_workspace, tmp_path):
    """The whole flow on real clips and the real MINDIR (MindSpore on the CPU): the inference reads only the clip
    shape, so it runs; postprocess.py refuses the label -1 before scoring anything, in one line, on the terminal and
    in acc.log."""
    ws = infer310_workspace
    assert preprocess.main(ws["args"] + [f"--output_path={tmp_path / 'preprocess_Result'}"]) == 0
    path = tmp_path / "preprocess_Result" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["videos"][1][1] = manifest["clips"][3]["label"] = -1
    path.write_text(json.dumps(manifest))
    proc = run_script("run_infer_310.sh", ws["mindir"], "ucf101", ws["jpg"], ws["ann"], "n", "0",
                      "--backend=mindir-python", *ws["model_args"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    expected = f"error: {path}: videos[1][1]: -1 is not a class of class_names (0 to 7); {UNLABELLED}"
    output = (proc.stdout + proc.stderr).splitlines()
    assert [line for line in output if "error" in line] == [expected]
    assert (tmp_path / "acc.log").read_text() == expected + "\n"
    assert len(list((tmp_path / "result_Files").glob("*_0.bin"))) == 24 and not (tmp_path / "time_Result").exists()


def test_run_infer_310_sh_without_ascend_says_what_is_missing(infer310_workspace, tmp_path):
    ws = infer310_workspace
    proc = run_script("run_infer_310.sh", ws["mindir"], "ucf101", ws["jpg"], ws["ann"], "n", "0", cwd=tmp_path,
                      timeout=300, ASCEND_HOME=tmp_path / "no_ascend")
    assert proc.returncode != 0
    assert "preprocess_Result/data missing" in proc.stderr  # n = reuse, but nothing was pre-processed
    (tmp_path / "preprocess_Result" / "data").mkdir(parents=True)
    (tmp_path / "lite").mkdir()  # an empty folder where the MindSpore Lite package should be
    proc = run_script("run_infer_310.sh", ws["mindir"], "ucf101", ws["jpg"], ws["ann"], "n", "0", cwd=tmp_path,
                      timeout=300, ASCEND_HOME=tmp_path / "no_ascend", LITE_HOME=tmp_path / "lite")
    assert proc.returncode != 0
    assert "ASCEND_HOME" in proc.stderr and "runtime/include/api/model.h" in proc.stderr
    assert "runtime/lib/libmindspore-lite.so" in proc.stderr
    assert "--backend=mindir-python" in proc.stderr
    assert not (tmp_path / "result_Files").exists()  # stopped before any inference step


@pytest.mark.parametrize("env, expected", [
    ({}, ["LITE_HOME is not set", "mindspore-lite-<MindSpore version>-linux-"]),
    ({"LITE_HOME": "{tmp}/absent"}, ["LITE_HOME={tmp}/absent does not exist"]),
    ({"LITE_HOME": "{tmp}"}, ["{tmp}/runtime/include/api/model.h", "{tmp}/runtime/lib/libmindspore-lite.so"]),
])
def test_build_sh_names_what_is_missing(tmp_path, env, expected):
    env = {key: value.format(tmp=tmp_path) for key, value in env.items()}
    base = {k: v for k, v in os.environ.items() if k != "LITE_HOME"}
    before = [(INFER_DIR / d).exists() for d in ("build", "out")]
    proc = subprocess.run(["bash", str(INFER_DIR / "build.sh")], env={**base, **env,
                          "ASCEND_HOME": str(tmp_path / "no_ascend")}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot build ascend310_infer here; missing:")
    assert f"ASCEND_HOME={tmp_path / 'no_ascend'} does not exist" in proc.stderr
    for text in expected:
        assert text.format(tmp=tmp_path) in proc.stderr
    assert [(INFER_DIR / d).exists() for d in ("build", "out")] == before  # stopped before touching them


@pytest.mark.parametrize("args, message", [
    ([], "Usage: bash run_infer_310.sh"),
    (["m.mindir", "ucf101", "a"], "Usage: bash run_infer_310.sh"),
    (["{mindir}", "my/data", "a", "b"], "is not a name of letters, digits"),
    (["{mindir}", "ucf101", "{jpg}", "{ann}", "maybe"], "NEED_PREPROCESS"),
    (["{mindir}", "ucf101", "{jpg}", "{ann}", "y", "x"], "DEVICE_ID"),
    (["{mindir}", "ucf101", "{jpg}", "{ann}", "y", "0", "--backend=gpu"],
     "backend 'gpu' is not ascend310, lite-python or mindir-python"),
    (["/nonexistent.mindir", "ucf101", "{jpg}", "{ann}"], "MINDIR_PATH"),
    (["{mindir}", "ucf101", "/nonexistent", "{ann}", "y"], "VIDEO_PATH"),
])
def test_run_infer_310_sh_usage(infer310_workspace, tmp_path, args, message):
    proc = run_script("run_infer_310.sh", *[a.format(**infer310_workspace) for a in args], cwd=tmp_path,
                      timeout=300)
    assert proc.returncode != 0 and message in proc.stderr


# --- the C++ program: compiled against the MindSpore Lite API headers (no Lite library here) ---

def _header_root(name):
    """Include root holding include/api/*.h for a header set, or skip saying why it is not here."""
    if name == "stand_in":
        return LITE_API_HEADERS / "stand_in"
    if name == "upstream":
        root = LITE_API_HEADERS / "upstream"
        if not (root / "include" / "api" / "model.h").is_file():
            pytest.skip(f"no verbatim MindSpore Lite headers in {root} "
                        f"(not committed; see {LITE_API_HEADERS / 'README.md'})")
        return root
    lite_home = os.environ.get("LITE_HOME")
    if not lite_home or not (Path(lite_home) / "runtime" / "include" / "api" / "model.h").is_file():
        pytest.skip("LITE_HOME does not point to an unpacked MindSpore Lite package")
    return Path(lite_home) / "runtime"


def _syntax_check(root, *sources, include_infer=True):
    args = [GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-isystem", str(root)]
    if include_infer:
        args += ["-I", str(INFER_DIR)]
    return subprocess.run(args + [str(s) for s in sources], capture_output=True, text=True, timeout=120)


@needs_gxx
@pytest.mark.parametrize("headers", ["stand_in", "upstream", "lite_home"])
def test_main_cc_compiles_against_lite_api(headers):
    root = _header_root(headers)
    proc = _syntax_check(root, INFER_DIR / "src" / "main.cc", INFER_DIR / "src" / "utils.cc")
    assert proc.returncode == 0, proc.stderr


@needs_gxx
@pytest.mark.parametrize("headers", ["stand_in", "upstream", "lite_home"])
def test_stand_in_declarations_exist_in_lite_api(headers):
    """signature_probe.cc names each stand-in declaration with its exact type: it must compile against both."""
    proc = _syntax_check(_header_root(headers), LITE_API_HEADERS / "signature_probe.cc", include_infer=False)
    assert proc.returncode == 0, proc.stderr


@needs_gxx
def test_stand_ins_reject_the_pre_2_2_interface(tmp_path):
    """The seed's way (a Graph wrapped in GraphCell, the Ascend310DeviceInfo spelling) does not compile against
    the stand-ins, so the stand-in check catches a return to it."""
    old = tmp_path / "old_main.cc"
    old.write_text("#include <memory>\n#include \"include/api/context.h\"\n#include \"include/api/model.h\"\n"
                   "int main() {\n  auto context = std::make_shared<mindspore::Context>();\n"
                   "  auto device = std::make_shared<mindspore::Ascend310DeviceInfo>();\n"
                   "  mindspore::Graph graph;\n  mindspore::Model model;\n"
                   "  return model.Build(mindspore::GraphCell(graph), context) == mindspore::kSuccess ? 0 : 1;\n}\n")
    proc = _syntax_check(LITE_API_HEADERS / "stand_in", old, include_infer=False)
    assert proc.returncode != 0
    for name in ("Ascend310DeviceInfo", "Graph", "GraphCell"):
        pattern = f"[\u2018']{name}[\u2019'] is not a member of [\u2018']mindspore[\u2019']"
        assert re.search(pattern, proc.stderr), proc.stderr


# A driver around the MindSpore-free helpers of utils.cc, so they run for real here.
DRIVER = r"""
#include <iostream>
#include <string>
#include <vector>
#include "inc/utils.h"
int main(int argc, char **argv) {
  const std::string cmd = argv[1];
  if (cmd == "list") {
    for (const std::string &f : ListBinFiles(argv[2])) std::cout << f << "\n";
  } else if (cmd == "result") {
    std::cout << ResultPath(argv[2], std::stoul(argv[3]), argv[4]) << "\n";
  } else if (cmd == "write") {
    const std::string data = argv[3];
    return WriteFile(argv[2], data.data(), data.size()) ? 0 : 1;
  } else if (cmd == "read") {
    std::vector<char> buffer;
    if (!ReadFile(argv[2], &buffer)) return 1;
    std::cout << buffer.size() << "\n";
  } else if (cmd == "parse") {
    Options o;
    std::string error;
    if (!ParseOptions(argc - 1, argv + 1, &o, &error)) { std::cerr << "error: " << error << "\n"; return 2; }
    std::cout << o.mindir_path << "|" << o.dataset_path << "|" << o.result_path << "|" << o.time_path << "|"
              << o.device_id << "\n";
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def helpers(tmp_path_factory):
    if GXX is None:
        pytest.skip("g++ is not installed: the C++ checks need it")
    out = tmp_path_factory.mktemp("cc")
    (out / "driver.cc").write_text(DRIVER)
    exe = out / "driver"
    proc = subprocess.run([GXX, "-std=c++17", "-Wall", "-Werror", "-O1", "-I", str(INFER_DIR), str(out / "driver.cc"),
                           str(INFER_DIR / "src" / "utils.cc"), "-o", str(exe)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr

    def run(*args):
        return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=30)

    return run


def test_cc_lists_bin_clips_sorted_and_names_results_like_python(helpers, tmp_path):
    for name in ("clip_0000002.bin", "clip_0000000.bin", "notes.txt", ".clip_0000001_0.bin.tmp", "clip_0000001.bin"):
        (tmp_path / name).write_bytes(b"x")
    listed = helpers("list", tmp_path).stdout.split()
    assert listed == [f"{tmp_path}/clip_000000{i}.bin" for i in range(3)]
    assert helpers("list", tmp_path / "absent").stdout == ""
    result = helpers("result", listed[1], 0, "/out/result_Files").stdout.strip()
    assert result == f"/out/result_Files/{result_name('clip_0000001')}"  # what postprocess.py reads


def test_cc_writes_through_a_temporary_name(helpers, tmp_path):
    target = tmp_path / "clip_0000000_0.bin"
    assert helpers("write", target, "probabilities").returncode == 0
    assert target.read_bytes() == b"probabilities" and sorted(os.listdir(tmp_path)) == [target.name]
    assert helpers("read", target).stdout.strip() == str(len(b"probabilities"))
    proc = helpers("write", tmp_path / "absent" / "clip_0000000_0.bin", "x")  # a result folder that is not there
    assert proc.returncode == 1 and proc.stderr.startswith("error: cannot write") and "absent" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == [target.name]
    proc = helpers("read", tmp_path / "none.bin")
    assert proc.returncode == 1 and proc.stderr.strip() == f"error: cannot open {tmp_path / 'none.bin'}"


@pytest.mark.parametrize("args, expected", [
    (["--mindir_path=m.mindir"], "m.mindir|./preprocess_Result/data|./result_Files|./time_Result|0"),
    (["--mindir_path=m", "--dataset_path=d", "--result_path=r", "--time_path=t", "--device_id=7"], "m|d|r|t|7"),
    (["--mindir_path=a=b"], "a=b|./preprocess_Result/data|./result_Files|./time_Result|0"),
])
def test_cc_parses_the_options_of_run_infer_310_sh(helpers, args, expected):
    proc = helpers("parse", *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


@pytest.mark.parametrize("args, message", [
    ([], "--mindir_path is required"),
    (["--mindir_path=m", "--device_id=-1"], "--device_id=-1 is not a device number"),
    (["--mindir_path=m", "--device_id=1x"], "--device_id=1x is not a device number"),
    (["--mindir_path=m", "--device_id=99999999999"], "--device_id=99999999999 is not a device number"),
    (["--mindir_path=m", "--batch_size=1"], "unknown option --batch_size"),
    (["--mindir_path", "m"], "argument '--mindir_path' is not --key=value"),
    (["m.mindir"], "argument 'm.mindir' is not --key=value"),
])
def test_cc_option_errors(helpers, args, message):
    proc = helpers("parse", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {message}")


# --- lite-python: MindSpore Lite's Python package is not installable here (no wheel for this Python) ---

@pytest.mark.skipif(LITE_INSTALLED, reason="mindspore_lite is installed: the missing-package path cannot run")
def test_lite_python_without_the_package_says_how_to_get_it(infer310_workspace, tmp_path, capsys):
    data = tmp_path / "pre" / "data"
    data.mkdir(parents=True)
    np.zeros(3 * 4 * 32 * 32, np.float32).tofile(data / "clip_0000000.bin")
    assert lite.main([f"--mindir_path={infer310_workspace['mindir']}", f"--dataset_path={data}",
                      f"--result_path={tmp_path / 'res'}", "--device_id=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: MindSpore Lite's Python package is not installed")
    assert "pip install mindspore-lite==" in err[0] and "--backend=mindir-python" in err[0]
    assert not (tmp_path / "res").exists()
    assert lite.main(["--check"]) == 2 and capsys.readouterr().err == "error: " + err[0][len("error: "):] + "\n"


@pytest.mark.parametrize("args, message", [
    (["--dataset_path=d"], "--mindir_path is required"),
    (["--mindir_path=m", "--device_id=-2"], "--device_id=-2 is not a device number"),
])
def test_lite_python_option_errors(args, message, capsys):
    assert lite.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


@pytest.mark.skipif(LITE_INSTALLED, reason="mindspore_lite is installed: the missing-package path cannot run")
def test_run_infer_310_sh_lite_python_fails_fast_without_the_package(infer310_workspace, tmp_path):
    ws = infer310_workspace
    proc = run_script("run_infer_310.sh", ws["mindir"], "ucf101", ws["jpg"], ws["ann"], "y", "0",
                      "--backend=lite-python", *ws["model_args"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MindSpore Lite's Python package is not installed")
    assert not (tmp_path / "preprocess_Result").exists() and not (tmp_path / "acc.log").exists()
