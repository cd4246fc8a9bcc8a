"""Join encoded parts of one output into the output file by stream copy, with the audio muxed once.

A job's output can be encoded in parts: consecutive chunks by several encoders at once
(`chunks`), or the segments of a job split across workers (`segments`). Each part is a complete
file whose video starts with a key frame, encoded with the same parameters, so its packets can
follow the previous part's unchanged: no re-encode, no quality loss, and the join costs a read
and a write of compressed data. Part k's frames are renumbered to follow the frames before it, so
output frame n still has pts n in 1/fps; the audio, the container's tags and chapters, the head
start of early audio and the last frame's duration are written here, once over the whole, as the
single encoder writes them.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import cast

import av

from rife_core.video.audio import AudioTrack
from rife_core.video.codecs import CodecPlan
from rife_core.video.encode import OutputFile, last_frame_lasts
from rife_core.video.metadata import Chapter

# Packets held back so the last frame's duration can be set at the end: more than any encoder's
# reordering depth (x264's b-pyramid puts the highest pts at most a few packets before the last).
_TAIL = 16


class StreamJoiner(OutputFile):
    """One output file built from parts added in order. Not thread-safe."""

    def __init__(self, path: Path, plan: CodecPlan, fps: Fraction, audio: AudioTrack | None = None, *,
                 tags: Mapping[str, str] | None = None, chapters: Sequence[Chapter] = (), first_pts: int = 0) -> None:
        self.path = path
        self.fps = Fraction(fps)
        self.time_base = 1 / self.fps
        self.first_pts = first_pts
        self.frames = 0
        self._plan = plan
        self._audio = audio
        self._tags = dict(tags or {})
        self._chapters = list(chapters)
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._tail: deque[av.Packet] = deque()

    def _open(self, template: av.video.stream.VideoStream) -> av.video.stream.VideoStream:
        out = self._container = av.open(os.fspath(self.path), "w", format=self._plan.muxer, options=self._plan.muxer_options)
        if self._tags:
            out.metadata.update(self._tags)
        if self._chapters:
            out.set_chapters([
                {"id": i + 1, "start": round(c.start_s * 1000), "end": round(c.end_s * 1000),
                 "time_base": Fraction(1, 1000), "metadata": {"title": c.title} if c.title else {}}
                for i, c in enumerate(self._chapters)
            ])
        stream = cast(av.video.stream.VideoStream, out.add_stream_from_template(template))
        stream.time_base = self.time_base  # as the encoder's: MP4 then keeps the rate's own timescale
        if self._audio is not None:
            self._audio.attach(out)
        return stream

    def add(self, part: Path) -> int:
        """Copy the video of `part` after what is already written; returns its frame count."""
        with av.open(os.fspath(part)) as source:
            video = source.streams.video[0]
            if self._stream is None:
                self._stream = self._open(video)
            tb = Fraction(video.time_base) if video.time_base is not None else self.time_base
            offset = self.first_pts + self.frames
            count = 0
            for packet in source.demux(video):
                if packet.pts is None or packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                count += 1
                packet.pts = offset + round(packet.pts * tb * self.fps)
                if packet.dts is not None:
                    packet.dts = offset + round(packet.dts * tb * self.fps)
                packet.duration = max(1, round((packet.duration or 0) * tb * self.fps))
                packet.time_base = self.time_base
                packet.stream = self._stream
                self._tail.append(packet)
                while len(self._tail) > _TAIL:
                    self._mux(self._tail.popleft())
        self.frames += count
        return count

    def _mux(self, packet: av.Packet) -> None:
        assert self._container is not None
        self._container.mux(packet)
        if self._audio is not None:
            # Keep audio interleaved with the video written so far (plus a little lead), as the encoder does.
            self._audio.copy_until(float(Fraction((packet.pts or 0) + 1) / self.fps) + 0.5)

    def close(self, last_frame_ticks: int = 1) -> None:
        """Write the held packets (the last frame lasting `last_frame_ticks` intervals), the rest of the
        audio, and finish the file."""
        if self._container is None:
            raise ValueError("no part with video to join")
        try:
            tail = list(self._tail)
            last_frame_lasts(tail, last_frame_ticks)
            for packet in tail:
                self._mux(packet)
            self._tail.clear()
            if self._audio is not None:
                self._audio.copy_until(None)
        finally:
            self._close_all()
