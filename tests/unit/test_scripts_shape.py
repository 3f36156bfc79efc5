"""The launch scripts stay thin wrappers (issue 20): each scripts/*.sh at most 60 lines; the run_*.sh scripts
are strict bash that print their usage line on wrong arguments, with the shared checks of common.sh."""
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
MAX_LINES = 60


def test_there_are_scripts():
    assert (SCRIPTS / "common.sh").is_file() and len(list(SCRIPTS.glob("run_*.sh"))) >= 7


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_script_is_at_most_60_lines(script):
    lines = (SCRIPTS / script).read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"{script} has {len(lines)} lines: move its logic into src/launch/"


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("run_*.sh")))
def test_run_script_is_strict_and_says_its_usage(script):
    text = (SCRIPTS / script).read_text()
    assert text.startswith("#!/bin/bash\n") and "\nset -euo pipefail\n" in text
    assert f'USAGE="bash {script} ' in text and 'source "$(dirname "${BASH_SOURCE[0]}")/common.sh"' in text
