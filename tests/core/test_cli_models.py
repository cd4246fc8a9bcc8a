"""`rife-video models` lists, fetches and adds models through the registry."""

from __future__ import annotations

import shutil

from rife_core.cli import main
from rife_core.weights import BUILTIN


def test_models_add_then_list(tmp_path, monkeypatch, capsys):
    real = BUILTIN["rife-4.0"].verified_path()
    monkeypatch.setenv("RIFE_MODEL_DIR", str(tmp_path / "models"))
    mine = tmp_path / "mine.pkl"
    shutil.copy(real, mine)
    assert main(["models", "add", "my-rife", str(mine)]) == 0
    assert "my-rife: RIFE 4.0" in capsys.readouterr().out
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "rife-4.0 (default)" in listing and "not fetched" in listing  # the builtin is not in this dir
    assert "my-rife\tRIFE 4.0\trow 4.0\tinstalled" in listing


def test_models_add_refuses_a_non_rife_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RIFE_MODEL_DIR", str(tmp_path / "models"))
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a checkpoint")
    assert main(["models", "add", "junk", str(junk)]) == 1
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err
