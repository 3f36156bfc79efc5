"""Registers the suite's fixtures; they live in tests/helpers (fixtures.py also sets up the CPU runtime)."""
pytest_plugins = ["tests.helpers.fixtures", "tests.helpers.workspaces"]
