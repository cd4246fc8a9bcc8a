"""`python -m rife_core.cli`: interpolate with the real model, models list/fetch, errors as exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
from fractions import Fraction

import pytest
from clipmaker import cut_clip, moving_square, read_video, write_video

from rife_core.cli import build_parser, main


def test_models_lists_every_builtin(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "rife-4.0" in out and ("installed" in out or "not fetched" in out)
    assert main(["models", "list"]) == 0


def test_models_fetch_verifies_the_cached_file(capsys):
    # the weights are already cached (make setup), so this only re-verifies them: no network
    assert main(["models", "fetch", "rife-4.0"]) == 0
    assert "sha256 verified" in capsys.readouterr().out


def test_models_fetch_unknown_name_fails(capsys):
    assert main(["models", "fetch", "rife-0.1"]) == 1
    assert "unknown model" in capsys.readouterr().err


def test_arguments():
    args = build_parser().parse_args(["interpolate", "a.mp4", "b.mp4", "--fps", "24", "--loop", "--num-frames", "3"])
    assert (args.fps, args.loop, args.num_frames, args.scene_detection) == (24.0, True, 3, False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["interpolate", "a.mp4", "b.mp4", "--fps", "24", "--calculated-fps"])
    with pytest.raises(SystemExit):
        main(["interpolate", "a.mp4", "b.mp4", "--num-frames", "0"])


def test_bad_input_is_an_error_exit(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["interpolate", str(bad), str(tmp_path / "out.mp4")]) == 1
    assert "error (invalid_video)" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_interpolate_real_clip_piece(tmp_path, clip, capsys):
    src = tmp_path / "in.mp4"
    cut_clip(clip("carphone_pristine.mp4"), src, start=0, count=5)
    out = tmp_path / "out.mp4"
    code = main(
        ["interpolate", str(src), str(out), "--num-frames", "2", "--scene-detection", "--device", "cpu",
         "--frames-dir", str(tmp_path / "png"), "--batch-size", "2"]
    )
    assert code == 0
    summary = capsys.readouterr().out
    print(summary)
    assert "5 frames at 30000/1001 fps" in summary and "13 frames at 90000/1001 fps" in summary
    assert "8 interpolated frames" in summary
    got = read_video(out)
    assert got.frames == 13 and got.average_rate == Fraction(90000, 1001)
    assert len(list((tmp_path / "png").glob("frame_*.png"))) == 13


@pytest.mark.slow
def test_python_dash_m_entry_point(tmp_path):
    src = write_video(tmp_path / "in.mp4", [moving_square(i) for i in range(3)])
    out = tmp_path / "out.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "rife_core.cli", "interpolate", str(src), str(out), "--fps", "12", "--loop"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 frames at 10 fps" in proc.stdout and "6 frames at 12 fps" in proc.stdout
    assert read_video(out).frames == 6


def test_errors_are_one_line_with_their_type_and_a_traceback_only_with_debug(tmp_path, capsys):
    src = tmp_path / "in.mp4"
    write_video(src, [moving_square(i) for i in range(4)])
    blocked = tmp_path / "file"
    blocked.write_text("x")
    out = blocked / "out.mp4"  # its folder is a file
    assert main(["interpolate", str(src), str(out), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("error")]
    assert len(lines) == 1 and re.match(r"error \((FileExistsError|NotADirectoryError)\): ", lines[0]), err
    assert main(["interpolate", str(src), str(out), "--device", "cpu", "--debug"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_invalid_input_names_the_file_and_what_it_looks_like(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("meeting notes\n" * 20)
    assert main(["interpolate", str(bad), str(tmp_path / "out.mp4")]) == 1
    err = capsys.readouterr().err
    assert err == f"error (invalid_video): {bad}: not a video: looks like a text file\n"


def test_ogg_with_empty_vorbis_packets_and_a_truncated_file_complete(tmp_path, capsys):
    from corpus import BY_NAME, truncate, write_case

    ogg = write_case(BY_NAME["ogg_vp8_vorbis_empty"], tmp_path)
    assert main(["interpolate", str(ogg), str(tmp_path / "ogg.mp4"), "--device", "cpu"]) == 0
    assert "20 frames at 10 fps" in capsys.readouterr().out
    cut = truncate(write_case(BY_NAME["mp4_h264_aac"], tmp_path), 0.3)
    assert main(["interpolate", str(cut), str(tmp_path / "cut.mp4"), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    # The 3 frames that survive stand at 0, 0.1 and 0.4 s (the cut took a B-frame's references): placed
    # by their times, they average 5 fps and fill 0..0.4 s at 2 x that rate.
    assert "3 frames at 5 fps (5.000) -> 5 frames at 10 fps" in captured.out
    assert "[WARN] the video looks truncated" in captured.err and "Traceback" not in captured.err


def test_segments_run_the_job_split_and_give_the_whole_runs_frames(tmp_path, capsys):
    """`--segments 2`: the fan-out's path in one process (plan at key frames, each segment, the join), with
    the real model: the same PNGs as the whole run, one file with every frame."""
    src = write_video(tmp_path / "in.mp4", [moving_square(i, 64, 48) for i in range(16)], rate=10,
                      options={"g": "4", "keyint_min": "4", "sc_threshold": "0"})
    for name, extra in (("whole", []), ("split", ["--segments", "2"])):
        code = main(["interpolate", str(src), str(tmp_path / f"{name}.mp4"), "--device", "cpu", "--precision", "fp32",
                     "--frames-dir", str(tmp_path / name), *extra])
        assert code == 0
    err = capsys.readouterr().err
    assert "split into 2 segments at input frames 0, 8" in err and "joined 2 segments" in err
    whole, split = sorted((tmp_path / "whole").glob("*.png")), sorted((tmp_path / "split").glob("*.png"))
    assert len(whole) == len(split) == 31
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(whole, split, strict=True))
    assert read_video(tmp_path / "split.mp4").pts == read_video(tmp_path / "whole.mp4").pts
    with pytest.raises(SystemExit) as refused:
        main(["interpolate", str(src), str(tmp_path / "x.mp4"), "--segments", "0"])
    assert refused.value.code == 2 and "--segments must be >= 1" in capsys.readouterr().err
