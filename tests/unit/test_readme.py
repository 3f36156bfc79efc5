"""The README is the manual: its configuration tables are generated from src/config_keys.py."""
from src.config import REPO_ROOT
from src.config_doc import REFERENCE, reference_table, section_table


def test_readme_and_reference_tables_match_the_declared_keys():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert section_table() in readme, "regenerate the tables: python -m src.config_doc --write"
    assert reference_table() in REFERENCE.read_text(encoding="utf-8"), "regenerate: python -m src.config_doc --write"


def test_readme_names_every_script_and_entry_point_and_stays_a_manual():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for script in sorted((REPO_ROOT / "scripts").glob("*.sh")) + sorted(REPO_ROOT.glob("*.py")):
        assert script.name in readme, script.name
    assert len(readme.splitlines()) <= 400, "the README is the user's manual: at most 400 lines"
