"""The model computes the published RIFE 4.0 function (same weights, same inputs) and behaves like
an interpolator at every timestep, batch layout and frame size."""

from __future__ import annotations

import math

import av
import pytest
import torch
import torch.nn.functional as F
from reference import reference_v2

from rife_core.weights import load_state_dict, resolve_path

TOL = 1e-4


def real_frames(path, indices, crop_w=None):
    wanted = max(indices) + 1
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(wanted), c.decode(video=0), strict=False)]
    out = [torch.from_numpy(frames[i]).permute(2, 0, 1).float().div(255)[None] for i in indices]
    return [x[..., :crop_w] if crop_w else x for x in out]


@pytest.fixture(scope="module")
def reference():
    net = reference_v2().IFNet("cpu")
    net.load_state_dict(load_state_dict(resolve_path("rife-4.0")), strict=False)  # contextnet/unet unused
    return net.eval()


def run_reference(net, img0, img1, t, pad_to, ensemble=False):
    """The published forward pass on the same padded input (a fresh scale list each call: it mutates it)."""
    h, w = img0.shape[-2:]
    ph, pw = pad_to
    x = torch.cat((F.pad(img0, (0, pw - w, 0, ph - h)), F.pad(img1, (0, pw - w, 0, ph - h))), 1)
    scales = [8, 4, 2, 1]
    with torch.no_grad():
        _, _, merged = net(x, t, scales, ensemble=ensemble)
    return merged[3][..., :h, :w], scales


@pytest.mark.parametrize("t", [0.5, 1 / 3])
def test_matches_published_forward_pass_on_real_frames(model, reference, clip, t):
    img0, img1 = real_frames(clip("carphone_pristine.mp4"), [0, 2])
    ours = model.interpolate_float(img0, img1, [t])[:, 0]
    ref, scales = run_reference(reference, img0, img1, t, model.padded_size(*img0.shape[-2:]))
    assert scales == [8, 4, 2, 1]
    diff = (ours - ref).abs().max().item()
    print(f"t={t:.4f}: max abs diff vs published RIFE 4.0 = {diff:.2e}")
    assert diff <= TOL


@pytest.mark.parametrize("ensemble", [False, True])
def test_large_motion_branch_and_ensemble_match(model, reference, clip, ensemble):
    """Real content moved by (40, 70) px: the published code restarts at doubled scales."""
    (img0,) = real_frames(clip("bikes.mp4"), [0], crop_w=320)
    img1 = torch.roll(img0, shifts=(40, 70), dims=(2, 3))
    ens_model = type(model)(model.net, model.info, model.device, precision="fp32", scale=1.0, ensemble=ensemble)
    for t in (0.5, 1 / 3):
        ours = ens_model.interpolate_float(img0, img1, [t])[:, 0]
        # We pad to 32 and re-pad only restarting samples to 64; the published code needs 64 up front.
        assert model.padded_size(*img0.shape[-2:]) == (288, 320)
        ref, scales = run_reference(reference, img0, img1, t, (320, 320), ensemble)
        assert scales == [16, 8, 4, 2], "this input must exercise the large-motion branch"
        assert (ours - ref).abs().max().item() <= TOL


def test_batch_of_pairs_and_timesteps_equals_single_calls(model, clip):
    frames = real_frames(clip("carphone_pristine.mp4"), [0, 1, 2, 3])
    img0, img1 = torch.cat(frames[:2]), torch.cat(frames[2:])
    ts = [0.25, 0.5, 0.75]
    batched = model.interpolate_float(img0, img1, ts)
    assert batched.shape == (2, 3, 3, 144, 176)
    for k in range(2):
        for j, t in enumerate(ts):
            single = model.interpolate_float(img0[k : k + 1], img1[k : k + 1], [t])[0, 0]
            assert (batched[k, j] - single).abs().max().item() <= TOL


def psnr(a, b):
    mse = (a - b).pow(2).mean().item()
    return 10 * math.log10(1 / max(mse, 1e-12))


def test_timestep_ends_approach_the_frames_and_time_reversal_is_symmetric(model, clip):
    img0, img1 = real_frames(clip("carphone_pristine.mp4"), [0, 3])
    near0, near1 = model.interpolate_float(img0, img1, [0.001, 0.999])[0]
    print(f"PSNR t=0.001 vs frame 0: {psnr(near0, img0[0]):.1f} dB, t=0.999 vs frame 1: {psnr(near1, img1[0]):.1f} dB")
    assert psnr(near0, img0[0]) > 35 and psnr(near1, img1[0]) > 35
    assert psnr(near0, img0[0]) > psnr(near0, img1[0]) + 5
    fwd = model.interpolate_float(img0, img1, [1 / 3])[0, 0]
    rev = model.interpolate_float(img1, img0, [2 / 3])[0, 0]
    print(f"PSNR t=1/3 vs swapped t=2/3: {psnr(fwd, rev):.1f} dB")
    assert psnr(fwd, rev) > 35


@pytest.mark.parametrize("size", [(144, 176), (271, 639), (3, 5)])
def test_odd_sizes_round_trip(model, size):
    h, w = size
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8, generator=g)
    out = model.interpolate(a, a.flip(2), [0.5])
    assert out.shape == (1, 1, h, w, 3) and out.dtype == torch.uint8


def test_uint8_interface_matches_float_interface(model, clip):
    img0, img1 = real_frames(clip("carphone_pristine.mp4"), [0, 2])
    to_u8 = lambda x: x.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)  # noqa: E731
    out = model.interpolate(to_u8(img0), to_u8(img1), [0.5])
    ref = model.interpolate_float(img0, img1, [0.5])[:, 0].mul(255).round().clamp(0, 255).permute(0, 2, 3, 1)
    assert (out[:, 0].float() - ref).abs().max().item() <= 1


def test_rejects_tiny_frames_and_bad_timesteps(model):
    one = torch.zeros(1, 1, 1, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="at least 2x2"):
        model.interpolate(one, one, [0.5])
    a = torch.zeros(1, 8, 8, 3, dtype=torch.uint8)
    for bad in ([], [0.0], [1.0], [1.5]):
        with pytest.raises(ValueError, match="timesteps"):
            model.interpolate(a, a, bad)


def test_best_quality_beats_fast_on_dropped_frames_of_real_footage(clip):
    """Drop every middle frame of triplets (i, i+1, i+2) and rebuild it from its neighbours with the real
    4.0 weights: the test-time ensemble (quality='best') must score a higher mean PSNR than 'fast'."""
    from rife_core import load_model

    fast = load_model("rife-4.0", device="cpu", quality="fast")
    best = load_model("rife-4.0", device="cpu", quality="best")
    assert (fast.ensemble, best.ensemble) == (False, True)
    for name, count, crop_w in (("carphone_pristine.mp4", 45, None), ("bikes.mp4", 30, 320)):
        idx = list(range(0, count - 2, 3))
        frames = real_frames(clip(name), list(range(count)), crop_w=crop_w)
        img0 = torch.cat([frames[i] for i in idx])
        img1 = torch.cat([frames[i + 2] for i in idx])
        truth = torch.cat([frames[i + 1] for i in idx])
        scores = {}
        for label, m in (("fast", fast), ("best", best)):
            out = m.interpolate_float(img0, img1, [0.5])[:, 0]
            scores[label] = sum(psnr(out[k], truth[k]) for k in range(len(idx))) / len(idx)
        print(f"{name}: {len(idx)} dropped frames, mean PSNR fast {scores['fast']:.2f} dB, best {scores['best']:.2f} dB")
        assert scores["best"] > scores["fast"]


def test_restart_is_per_sample_in_a_mixed_batch(model, clip):
    """One pair with large motion beside one without: each gets what it gets alone (the published
    check is batch-wide; ours decides per sample, so batching never changes a frame)."""
    (img0,) = real_frames(clip("bikes.mp4"), [0], crop_w=320)
    far = torch.roll(img0, shifts=(40, 70), dims=(2, 3))
    near = torch.roll(img0, shifts=(1, 2), dims=(2, 3))
    batched = model.interpolate_float(torch.cat([img0, img0]), torch.cat([far, near]), [0.5])
    alone_far = model.interpolate_float(img0, far, [0.5])
    alone_near = model.interpolate_float(img0, near, [0.5])
    assert (batched[0] - alone_far[0]).abs().max().item() <= TOL
    assert (batched[1] - alone_near[0]).abs().max().item() <= TOL
