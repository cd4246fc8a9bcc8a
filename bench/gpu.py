"""GPU benchmark at 1080p (`make bench-gpu`): the model's variants beside the published pass, the CPU
stages around it, and whole jobs from a warm worker, in one run on one card.

What it answers: how many 1080p frames per second the model makes (fp32, fp16 autocast, fp16 weights,
bf16, batch sizes, channels_last, torch.compile) and how close that is to the card's compute (RIFE 4.0
does about 160 GFLOP per 1080p frame); what each CPU stage costs per frame (decode, RGB -> YUV by
swscale or on the GPU, x264); and the output frames per second of whole jobs, with each stage's busy
time, so the stage that limits throughput is named by a measurement.

`--smoke` runs every section tiny on the CPU (a check of this script, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT / "tests" / "service")]
from clips import cut_clip  # noqa: E402
from run import Reference, decode, ping_pong, psnr, run_cli  # noqa: E402

from rife_core import load_model  # noqa: E402
from rife_core.samples import sample_clip  # noqa: E402
from rife_core.video import InterpolationOptions, Limits, interpolate_video  # noqa: E402
from rife_core.video import encode as encode_mod  # noqa: E402
from rife_core.video.decode import decode_frames  # noqa: E402
from rife_core.video.encode import ColorTags, Encoder  # noqa: E402
from rife_core.video.options import default_preset  # noqa: E402
from rife_core.video.probe import probe  # noqa: E402
from rife_core.video.yuv import DeviceYuv420p  # noqa: E402

GFLOP_PER_FRAME = 160.0  # RIFE 4.0 at 1920x1088, counted over its convolutions (the figure)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, rounds: int, warmup: int = 2) -> float:
    """Median seconds of one call, each call synchronised."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def make_clip(dst: Path, size: tuple[int, int], frames: int) -> Path:
    """A real clip at the resolution the targets are stated for: bigbuckbunny.mp4 scaled to `size`."""
    return ping_pong(sample_clip("bigbuckbunny.mp4"), dst, frames, size, crf=16)


def bench_model(device: torch.device, size: tuple[int, int], smoke: bool, deadline: float, rows: list[dict],
                save, compile_too: bool) -> list[dict]:
    """Fills `rows` as it goes (and calls `save`), so a run cut short still returns what it measured."""
    w, h = size
    frames = decode(sample_clip("bigbuckbunny.mp4"), limit=18, size=(w, h))
    rounds = 2 if smoke else 10

    def batch(b: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Consecutive frames, the pairs a job sends. (Pairs that skip a frame move twice as far: one of
        # 8 such pairs here takes RIFE 4.0's large-motion restart, and the published code then restarts
        # the whole batch at half resolution, which measures a cheaper, different computation.)
        return torch.cat(frames[0:b]).to(device), torch.cat(frames[1 : b + 1]).to(device)

    a1, b1 = batch(1)
    ours32 = load_model("rife-4.0", device=device, precision="fp32")
    truth = ours32.interpolate_float(a1, b1, [0.5])[:, 0].float().cpu()

    def record(name: str, b: int, fn, out_fn=None, note: str = "") -> None:
        if time.monotonic() > deadline:
            print(f"  skipped (time): {name}", flush=True)
            return
        try:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            s = timed(fn, device, rounds)
            ms = s / b * 1000
            row = {"variant": name, "batch": b, "ms_per_frame": ms, "fps": 1000 / ms,
                   "tflops": GFLOP_PER_FRAME * (w * h) / (1920 * 1088) / ms, "note": note}
            if out_fn is not None:
                row["psnr_vs_fp32"] = psnr(out_fn().float().cpu(), truth)
            if device.type == "cuda":
                row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            rows.append(row)
            save()
            print(f"  {name:48s} b={b:2d} {ms:7.2f} ms/frame {1000 / ms:7.1f} fps  "
                  f"{row['tflops']:5.1f} TFLOP/s  PSNR vs fp32 {row.get('psnr_vs_fp32', float('nan')):.2f}", flush=True)
        except Exception as e:  # one variant failing must not lose the others
            print(f"  FAILED {name}: {type(e).__name__}: {e}", flush=True)
            rows.append({"variant": name, "batch": b, "error": f"{type(e).__name__}: {e}"})

    ref32 = Reference(device, 64, fp16=False)
    record("published 4.0, fp32, pad 64", 1, lambda: ref32(a1, b1, 0.5), lambda: ref32(a1, b1, 0.5))
    record("rife-video, fp32", 1, lambda: ours32.interpolate_float(a1, b1, [0.5]),
           lambda: ours32.interpolate_float(a1, b1, [0.5])[:, 0])
    half = device.type == "cuda"
    ref16 = Reference(device, 64, fp16=half)
    ref16cl = Reference(device, 64, fp16=half, channels_last=True)
    a8, b8 = batch(2 if smoke else 8)
    nb = a8.shape[0]
    record("published 4.0, fp16 autocast, pad 64", 1, lambda: ref16(a1, b1, 0.5), lambda: ref16(a1, b1, 0.5))
    record("published 4.0, fp16 autocast, pad 64", nb, lambda: ref16(a8, b8, 0.5), lambda: ref16(a1, b1, 0.5))
    record("published 4.0, fp16 autocast + channels_last", nb, lambda: ref16cl(a8, b8, 0.5),
           lambda: ref16cl(a1, b1, 0.5))
    if half:
        auto = load_model("rife-4.0", device=device, precision="fp32")

        def autocast_call(a, b):
            with torch.autocast("cuda", dtype=torch.float16):
                return auto.interpolate_float(a, b, [0.5])

        record("rife-video, fp16 autocast (fp32 weights)", nb, lambda: autocast_call(a8, b8),
               lambda: autocast_call(a1, b1)[:, 0])
        del auto
    ours = load_model("rife-4.0", device=device)  # the default: fp16 weights + channels_last on CUDA
    label = f"rife-video default ({ours.precision}{', channels_last' if ours.channels_last else ''})"
    for b in ((1, 2) if smoke else (1, 4, 8, 16)):
        a, bb = batch(b)
        ours.max_batch_pixels = max(ours.max_batch_pixels, b * 1088 * 1920)
        record(label, b, lambda a=a, bb=bb: ours.interpolate_float(a, bb, [0.5]),
               (lambda: ours.interpolate_float(a1, b1, [0.5])[:, 0]) if b == 1 else None)
    if half:
        ours.max_batch_pixels = 8 * 1088 * 1920
        record(f"{label}, 4 pairs x 3 timesteps (n = 3)", 12,
               lambda: ours.interpolate_float(a8[:4], b8[:4], [0.25, 0.5, 0.75]))
        torch.backends.cudnn.benchmark = False
        nobench = load_model("rife-4.0", device=device)
        torch.backends.cudnn.benchmark = False
        record(f"{label}, cudnn.benchmark off", nb, lambda: nobench.interpolate_float(a8, b8, [0.5]))
        torch.backends.cudnn.benchmark = True
        del nobench
        flat = load_model("rife-4.0", device=device)
        flat.channels_last = False
        flat.net = flat._forward = flat.net.to(memory_format=torch.contiguous_format)
        record("rife-video fp16 weights, NCHW", nb, lambda: flat.interpolate_float(a8, b8, [0.5]),
               lambda: flat.interpolate_float(a1, b1, [0.5])[:, 0])
        del flat
        bf = load_model("rife-4.0", device=device, precision="bf16")
        record("rife-video bf16 weights, channels_last", nb, lambda: bf.interpolate_float(a8, b8, [0.5]),
               lambda: bf.interpolate_float(a1, b1, [0.5])[:, 0])
        del bf
        if time.monotonic() > deadline or not compile_too:
            print("  skipped: torch.compile", flush=True)
            return rows
        t0 = time.perf_counter()
        comp = load_model("rife-4.0", device=device, compile=True)
        try:
            comp.interpolate_float(a8, b8, [0.5])
            sync(device)
            compile_s = time.perf_counter() - t0
            record("rife-video default + torch.compile", nb, lambda: comp.interpolate_float(a8, b8, [0.5]),
                   lambda: comp.interpolate_float(a1, b1, [0.5])[:, 0], note=f"first call (compile) {compile_s:.0f} s")
        except Exception as e:
            print(f"  FAILED torch.compile: {type(e).__name__}: {e}", flush=True)
            rows.append({"variant": "rife-video default + torch.compile", "batch": nb, "error": str(e)[:300]})
    return rows


def bench_stages(device: torch.device, clip: Path, smoke: bool) -> list[dict]:
    """Per-frame cost of each CPU stage at the clip's size, alone."""
    rows = []
    info = probe(clip, Limits())
    t0 = time.perf_counter()
    decoded = list(decode_frames(info))
    dt = time.perf_counter() - t0
    rows.append({"stage": "decode H.264 -> RGB (PyAV, frame threads)", "ms": dt / len(decoded) * 1000,
                 "fps": len(decoded) / dt})
    color = ColorTags.for_input(info)
    sample = decoded[: min(len(decoded), 24)]
    width, height = info.even_size

    enc = Encoder(Path(tempfile.mktemp(suffix=".mp4")), width, height, Fraction(50), 17, color)
    n = len(sample) * (1 if smoke else 4)
    t0 = time.perf_counter()
    for i in range(n):
        enc._yuv(sample[i % len(sample)])
    dt = time.perf_counter() - t0
    enc.abort()
    rows.append({"stage": "RGB -> yuv420p, swscale (one thread)", "ms": dt / n * 1000, "fps": n / dt})
    conv = DeviceYuv420p(device, color.colorspace, color.color_range == 2)
    conv(sample[0])
    t0 = time.perf_counter()
    for i in range(n):
        conv(sample[i % len(sample)])
    dt = time.perf_counter() - t0
    rows.append({"stage": f"RGB -> yuv420p on {device.type} (upload, convert, download)", "ms": dt / n * 1000,
                 "fps": n / dt})
    count = len(sample) * (1 if smoke else 12)
    variants = [("veryfast", "FRAME", True), ("veryfast", "SLICE", True), ("veryfast", "FRAME", False),
                ("superfast", "FRAME", True), ("ultrafast", "FRAME", True)]
    for preset, threading, on_device in variants[:1] if smoke else variants:
        encode_mod.THREAD_TYPE = threading
        path = Path(tempfile.mktemp(suffix=".mp4"))
        to_yuv = DeviceYuv420p(device, color.colorspace, color.color_range == 2) if on_device else None
        e = Encoder(path, width, height, Fraction(50), 17, color, to_yuv420p=to_yuv, preset=preset)
        t0 = time.perf_counter()
        for i in range(count):
            e.write(sample[i % len(sample)])
        e.close()
        dt = time.perf_counter() - t0
        size = path.stat().st_size
        path.unlink()
        rows.append({"stage": f"encode x264 {preset} crf 17, {os.cpu_count()} {threading.lower()} threads, YUV by "
                              f"{'the ' + device.type if on_device else 'swscale'}",
                     "ms": dt / count * 1000, "fps": count / dt, "mbit_per_s_at_50fps": size * 8 / (count / 50) / 1e6})
    encode_mod.THREAD_TYPE = "FRAME"
    for r in rows:
        print(f"  {r['stage']:70s} {r['ms']:7.2f} ms/frame {r['fps']:7.1f} fps", flush=True)
    return rows


def bench_jobs(device: torch.device, clip: Path, smoke: bool, tmp: Path) -> list[dict]:
    """Whole jobs through interpolate_video with a warm model, as a worker runs them."""
    model = load_model("rife-4.0", device=device)
    warm = tmp / "warm.mp4"
    cut_clip(clip, warm, 9)
    interpolate_video(warm, tmp / "warm_out.mp4", InterpolationOptions(), model)  # tunes cuDNN for this size
    rows = []
    variants = [(1, 4, None, "veryfast"), (1, 8, None, "veryfast"), (1, 4, None, "superfast"),
                (1, 4, None, "ultrafast"), (3, 4, None, "veryfast")]
    if smoke:
        variants = [(1, 4, None, "veryfast"), (1, 4, True, "veryfast")]
    for n, bs, on_device, preset in variants:
        last: list = []
        result = interpolate_video(clip, tmp / "out.mp4", InterpolationOptions(num_frames=n, batch_size=bs, preset=preset,
                                   yuv_on_model_device=on_device), model, progress=last.append)
        mbit = (tmp / "out.mp4").stat().st_size * 8 / (result.output_frames / float(result.output_fps)) / 1e6
        p = last[-1]
        yuv = "GPU" if (on_device is None and device.type == "cuda") else ("torch" if on_device else "swscale")
        row = {"n": n, "batch": bs, "yuv": yuv, "preset": preset, "mbit_s": mbit, "input_frames": result.input_frames,
               "output_frames": result.output_frames, "wall_s": result.wall_s, "out_fps": result.output_frames / result.wall_s,
               "decode_busy": p.decode_s / result.wall_s, "inference_busy": p.inference_s / result.wall_s,
               "encode_busy": p.encode_s / result.wall_s}
        rows.append(row)
        print(f"  job n={n} batch={bs} yuv={yuv:8s} {preset:9s} {mbit:5.1f} Mbit/s: {result.input_frames} -> {result.output_frames} frames in "
              f"{result.wall_s:.2f} s = {row['out_fps']:.1f} out fps; busy: decode {row['decode_busy']:.0%}, "
              f"model {row['inference_busy']:.0%}, encode {row['encode_busy']:.0%}", flush=True)
    wall, rss = run_cli(["interpolate", str(clip), str(tmp / "cli.mp4"), "--device", device.type])
    with av.open(str(tmp / "cli.mp4")) as c:
        frames = c.streams.video[0].frames
    rows.append({"n": 1, "batch": 4, "yuv": "cli, cold", "preset": default_preset(device.type), "output_frames": frames, "wall_s": wall,
                 "out_fps": frames / wall, "rss_mib": rss / 1024})
    print(f"  rife-video interpolate (new process: imports, weights, cuDNN tuning included): {wall:.2f} s, "
          f"{frames / wall:.1f} out fps, peak RSS {rss / 1024:.0f} MiB", flush=True)
    return rows


def report(meta: dict, model_rows, stage_rows, job_rows) -> str:
    lines = [f"## GPU: {meta['device']} ({meta['cpus']} CPU cores), torch {meta['torch']}, {meta['date']}, `bench/gpu.py`\n"]
    if model_rows:
        lines += [f"### Model at {meta['size']}: ms per interpolated frame (t = 0.5, real frames of bigbuckbunny.mp4 "
                  "scaled up; median of 10 synchronised calls)\n",
                  f"TFLOP/s counts {GFLOP_PER_FRAME:.0f} GFLOP per 1080p frame. PSNR is against rife-video in fp32 on the same pair.\n",
                  "| variant | batch | ms/frame | frames/s | TFLOP/s | PSNR vs fp32 dB | peak GiB | note |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in model_rows:
            if "error" in r:
                lines.append(f"| {r['variant']} | {r['batch']} | failed: {r['error'][:120]} | | | | | |")
            else:
                p = r.get("psnr_vs_fp32")
                lines.append(f"| {r['variant']} | {r['batch']} | {r['ms_per_frame']:.2f} | {r['fps']:.0f} | {r['tflops']:.1f} | "
                             f"{'' if p is None else f'{p:.2f}'} | {r.get('peak_gib', 0):.1f} | {r['note']} |")
    if stage_rows:
        lines += [f"\n### CPU stages alone at {meta['size']}\n", "| stage | ms/frame | frames/s | Mbit/s at 50 fps |",
                  "|---|---|---|---|"]
        lines += [f"| {r['stage']} | {r['ms']:.2f} | {r['fps']:.0f} | "
                  f"{format(r['mbit_per_s_at_50fps'], '.1f') if 'mbit_per_s_at_50fps' in r else ''} |" for r in stage_rows]
    if job_rows:
        lines += [f"\n### Whole jobs at {meta['size']} from a warm model (`interpolate_video`, as the worker runs them)\n",
                  "Busy shares are each stage's own working time over the job's wall time; the three overlap.\n",
                  "| n | pairs per call | RGB -> YUV | x264 preset | Mbit/s | input frames | output frames | wall s | output frames/s | decode busy | model busy | encode busy |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in job_rows:
            if "decode_busy" in r:
                lines.append(f"| {r['n']} | {r['batch']} | {r['yuv']} | {r['preset']} | {r['mbit_s']:.1f} | {r['input_frames']} | {r['output_frames']} | {r['wall_s']:.2f} | "
                             f"{r['out_fps']:.1f} | {r['decode_busy']:.0%} | {r['inference_busy']:.0%} | {r['encode_busy']:.0%} |")
            else:
                lines.append(f"| {r['n']} | {r['batch']} | {r['yuv']} (`rife-video interpolate`, peak RSS {r['rss_mib']:.0f} MiB) | {r['preset']} | | | "
                             f"{r['output_frames']} | {r['wall_s']:.2f} | {r['out_fps']:.1f} | | | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--frames", type=int, default=400, help="input frames of the 1080p job clip")
    ap.add_argument("--budget-s", type=float, default=150,
                    help="seconds from the start after which the model section skips what is left (torch.compile last)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant (about a minute)")
    ap.add_argument("--only", choices=["model", "stages", "jobs"], action="append")
    ap.add_argument("--out", type=Path, default=Path("bench") / "gpu-results")
    args = ap.parse_args()
    start = time.monotonic()
    device = torch.device("cpu" if args.smoke else "cuda")
    size = (256, 144) if args.smoke else (1920, 1080)
    only = set(args.only or ["model", "stages", "jobs"])
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU (smoke)",
            "cpus": os.cpu_count(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "size": f"{size[0]}x{size[1]}"}
    print(meta, flush=True)
    model_rows: list[dict] = []
    stage_rows: list[dict] = []
    job_rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", size, 24 if args.smoke else args.frames)
        print(f"clip: {clip.stat().st_size / 1e6:.1f} MB, {time.monotonic() - start:.0f} s", flush=True)
        def save() -> None:
            (args.out / "gpu.json").write_text(json.dumps({"meta": meta, "model": model_rows, "stages": stage_rows,
                                                          "jobs": job_rows}, indent=1, default=str))

        sections = (("model", lambda: bench_model(device, size, args.smoke, start + args.budget_s, model_rows, save,
                                                      not args.no_compile)),
                    ("stages", lambda: stage_rows.extend(bench_stages(device, clip, args.smoke))),
                    ("jobs", lambda: job_rows.extend(bench_jobs(device, clip, args.smoke, Path(tmp)))))
        for name, fn in sections:
            if name not in only:
                continue
            print(f"== {name} ({time.monotonic() - start:.0f} s)", flush=True)
            try:
                fn()
            except Exception:
                traceback.print_exc()
            save()
    text = report(meta, model_rows, stage_rows, job_rows)
    (args.out / "gpu.md").write_text(text)
    print("\n" + text, flush=True)
    print(f"total {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
