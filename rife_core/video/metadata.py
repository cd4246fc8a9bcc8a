"""What describes an input besides its pixels, read once by the probe and written into the output.

HDR side data (mastering display colour volume, content light level) tells a display how bright and
how wide the grade was; dropping it makes an HDR10 file play too dark or clipped on many TVs, so it
is carried into encoders that write it into the bitstream (x265, SVT-AV1). Container tags: the
title, creation time and a few descriptive tags are kept; location (GPS) tags are personal data a
phone adds silently, so they are dropped unless the deployment says otherwise
(`KEEP_LOCATION_METADATA`). Chapters are kept when the output has the input's duration.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# AVMasteringDisplayMetadata: 10 AVRationals (R, G, B primaries x/y, white point x/y, min and max
# luminance) as int32 pairs, then has_primaries and has_luminance.
_MASTERING = struct.Struct("<22i")
_LIGHT = struct.Struct("<2I")  # AVContentLightMetadata: MaxCLL, MaxFALL
# Tags carried from the input's container (lower-case FFmpeg names; MKV upper-cases some).
CARRIED_TAGS = ("title", "creation_time", "artist", "comment", "description", "copyright", "date")
# Container tags naming a place: QuickTime/MP4 `location` (+ language variants), Apple's ISO 6709 key,
# Matroska's LOCATION, XMP-style GPS keys.
_LOCATION_WORDS = ("location", "gps", "iso6709")


@dataclass(frozen=True)
class HdrMetadata:
    """Mastering display primaries and luminance (chromaticities in 1/50000, luminance in 1/10000
    cd/m2, the units of HEVC's SEI) and content light level (cd/m2); either may be absent."""

    primaries: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None  # R, G, B (x, y)
    white_point: tuple[int, int] | None = None
    luminance: tuple[int, int] | None = None  # (max, min)
    max_cll: int | None = None
    max_fall: int | None = None

    @classmethod
    def from_side_data(cls, mastering: bytes | None, light: bytes | None) -> HdrMetadata | None:
        """Parse FFmpeg's frame side data buffers; None when neither says anything."""
        prim = white = lum = None
        if mastering is not None and len(mastering) >= _MASTERING.size:
            v = _MASTERING.unpack_from(mastering)
            q = [Fraction(v[i], v[i + 1]) if v[i + 1] else Fraction(0) for i in range(0, 20, 2)]
            if v[20]:  # has_primaries
                c = [round(x * 50000) for x in q[:8]]
                prim = ((c[0], c[1]), (c[2], c[3]), (c[4], c[5]))
                white = (c[6], c[7])
            if v[21]:  # has_luminance
                lum = (round(q[9] * 10000), round(q[8] * 10000))
        cll = fall = None
        if light is not None and len(light) >= _LIGHT.size:
            cll, fall = _LIGHT.unpack_from(light)
        if prim is None and lum is None and cll is None:
            return None
        return cls(prim, white, lum, cll, fall)

    def x265_params(self) -> list[str]:
        """`master-display=G(..)B(..)R(..)WP(..)L(max,min)` and `max-cll=` for x265's -x265-params."""
        out = []
        if self.primaries and self.white_point and self.luminance:
            (rx, ry), (gx, gy), (bx, by) = self.primaries
            wx, wy = self.white_point
            out.append(f"master-display=G({gx},{gy})B({bx},{by})R({rx},{ry})WP({wx},{wy})"
                       f"L({self.luminance[0]},{self.luminance[1]})")
        if self.max_cll is not None:
            out.append(f"max-cll={self.max_cll},{self.max_fall or 0}")
        return out

    def svtav1_params(self) -> list[str]:
        """The same for SVT-AV1, which takes chromaticities and cd/m2 as decimals."""
        out = []
        if self.primaries and self.white_point and self.luminance:
            (rx, ry), (gx, gy), (bx, by) = self.primaries
            wx, wy = self.white_point

            def xy(x: int, y: int) -> str:
                return f"({x / 50000:.5f},{y / 50000:.5f})"

            out.append(f"mastering-display=G{xy(gx, gy)}B{xy(bx, by)}R{xy(rx, ry)}WP{xy(wx, wy)}"
                       f"L({self.luminance[0] / 10000:.4f},{self.luminance[1] / 10000:.4f})")
        if self.max_cll is not None:
            out.append(f"content-light={self.max_cll},{self.max_fall or 0}")
        return out


@dataclass(frozen=True)
class Chapter:
    start_s: float
    end_s: float
    title: str | None


@dataclass(frozen=True)
class ContainerMetadata:
    """The input container's tags (all of them, as read) and chapters."""

    tags: tuple[tuple[str, str], ...] = ()
    chapters: tuple[Chapter, ...] = ()

    @classmethod
    def read(cls, container: Any) -> ContainerMetadata:
        """From an open PyAV input container."""
        tags = tuple((str(k), str(v)) for k, v in dict(container.metadata).items())
        chapters = []
        try:
            raw = container.chapters()
        except (AttributeError, ValueError):  # pragma: no cover - PyAV before 15
            raw = []
        for ch in raw:
            tb = Fraction(ch["time_base"])
            chapters.append(Chapter(float(ch["start"] * tb), float(ch["end"] * tb), ch.get("metadata", {}).get("title")))
        return cls(tags, tuple(chapters))

    def output_tags(self, keep_location: bool) -> dict[str, str]:
        """The tags the output gets: CARRIED_TAGS, plus location tags when `keep_location`."""
        out: dict[str, str] = {}
        for key, value in self.tags:
            low = key.lower()
            if is_location_tag(low):
                if keep_location:
                    out["location" if low.startswith("location") else key] = value
            elif low in CARRIED_TAGS:
                out[low] = value
        return out


def is_location_tag(key: str) -> bool:
    low = key.lower()
    return any(word in low for word in _LOCATION_WORDS)
