"""The README is the manual: its configuration tables are generated from src/config_keys.py, it names every
entry point, stays short, keeps troubleshooting in docs/troubleshooting.md and marks its example outputs."""
import re

from src.config import REPO_ROOT
from src.config_doc import REFERENCE, reference_table, section_table


def _readme():
    return (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _section(text, title):
    """The body of the `## title` section."""
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_and_reference_tables_match_the_declared_keys():
    readme = _readme()
    assert section_table() in readme, "regenerate the tables: python -m src.config_doc --write"
    assert reference_table() in REFERENCE.read_text(encoding="utf-8"), "regenerate: python -m src.config_doc --write"


def test_readme_names_every_script_and_entry_point_and_stays_a_manual():
    readme = _readme()
    for script in sorted((REPO_ROOT / "scripts").glob("*.sh")) + sorted(REPO_ROOT.glob("*.py")):
        assert script.name in readme, script.name
    assert len(readme.splitlines()) <= 400, "the README is the user's manual: at most 400 lines"


def test_the_two_commands_are_two_and_the_environment_is_activated_before_the_first_python_command():
    readme = _readme()
    first_block = re.search(r"```bash\n(.*?)```", _section(readme, "The two commands"), re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == ["make demo", "make test"]
    activate = readme.index("source .venv/bin/activate")
    commands = [m.start() for m in re.finditer(r"^python3? ", readme, re.M)]
    assert commands and activate < commands[0], "say to activate .venv before the first python command"


def test_troubleshooting_lives_in_one_place():
    readme = _readme()
    body = _section(readme, "Troubleshooting")
    assert "docs/troubleshooting.md" in body and "| --- |" not in body and len(body.strip().splitlines()) <= 3
    assert "| message (abridged) |" not in readme
    doc = (REPO_ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    assert "--lr_decay_mode=plateau follows the validation loss" in doc


def test_every_example_output_is_marked_as_one():
    """No test run makes the README's console excerpts, so each says it is an example."""
    readme = _readme()
    blocks = [m.start() for m in re.finditer(r"^```text$", readme, re.M)]
    assert blocks
    for start in blocks:
        before = readme[:start].rstrip().rsplit("\n\n", 1)[-1]  # the paragraph that introduces the block
        assert "example output" in " ".join(before.lower().split()), before


def test_make_demo_installs_what_users_need_and_make_test_adds_the_test_tools():
    def pins(name):
        lines = (REPO_ROOT / name).read_text(encoding="utf-8").splitlines()
        return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]

    user, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    names = {p.split("==")[0].lower() for p in user}
    assert {"mindspore", "numpy", "torch", "onnx", "onnxruntime", "pyyaml", "tqdm", "matplotlib"} <= names
    assert not names & {"pytest", "ruff", "openvino", "openvino-telemetry"}
    assert "torch==2.13.0" in user, "any other torch spec can pull a multi-GB CUDA build"
    assert dev[0] == "-r requirements.txt" and {"pytest", "ruff"} <= {p.split("==")[0] for p in dev[1:]}
    assert all("==" in p for p in user + dev[1:]), "exact pins"


def test_every_picture_the_readme_shows_is_in_the_repository_and_small():
    """The README's pictures (the annotated frame and the CAM strip the demo makes, ...) are files of the
    repository that decode as images, each small enough for the manual."""
    import cv2

    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", _readme())
    assert {"docs/images/annotated_frame.png", "docs/images/cam_strip.png"} <= set(images)
    for image in images:
        path = REPO_ROOT / image
        assert not image.startswith(("http://", "https://", "/")), f"{image}: show a file of the repository"
        assert path.is_file(), f"the README shows {image}: no such file in the repository"
        assert path.stat().st_size < 100_000, f"{image}: {path.stat().st_size} bytes; shrink it"
        assert cv2.imread(str(path)) is not None, f"{image} does not decode as an image"
