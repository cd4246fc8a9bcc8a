"""The README is the contract with a new user: its commands and its configuration table stay true."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    head = README.split("## Use it")[0]
    assert "make run" in head and "make test" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and re.search(r"^make test$", ci, re.M)


def test_readme_configuration_table_is_the_settings_table():
    from worker.shared.settings import markdown_table

    block = README.split("<!-- settings:begin -->")[1].split("<!-- settings:end -->")[0].strip()
    assert block == markdown_table(), "README settings table is stale: run `make docs`"


def test_every_environment_variable_read_by_the_code_is_documented():
    """Any os.environ/getenv read in the packages names a variable the README lists."""
    out = subprocess.run(["grep", "-rhoE", r"(environ\.get|getenv)\(\s*\"[A-Z_]+\"", "rife_core", "worker", "api"],
                         cwd=ROOT, capture_output=True, text=True).stdout
    names = set(re.findall(r"\"([A-Z_]+)\"", out))
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert not missing, f"undocumented environment variables: {missing}"
