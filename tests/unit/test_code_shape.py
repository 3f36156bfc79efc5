"""The shape the code keeps: no function longer than 60 lines in src/ or the entry scripts (a longer one mixes
concerns that deserve names of their own)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60


def test_no_function_over_60_lines():
    long = []
    for path in sorted([*ROOT.joinpath("src").rglob("*.py"), *ROOT.glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these functions: " + "; ".join(long)
