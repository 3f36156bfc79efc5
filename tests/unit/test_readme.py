"""The README is the manual: its configuration table is generated from the YAML's help document."""
from src.config import REPO_ROOT
from src.config_doc import reference_table


def test_readme_config_reference_matches_ucf101_config():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert reference_table() in readme, "regenerate the table: python -m src.config_doc"


def test_readme_names_every_script_and_entry_point():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for script in sorted((REPO_ROOT / "scripts").glob("*.sh")) + sorted(REPO_ROOT.glob("*.py")):
        assert script.name in readme, script.name
