"""Carry the input's first audio stream into the output when the duration is kept.

Interpolation with the calculated rate keeps the video's duration, so the original audio still
fits: its packets are copied unchanged (no generation loss, no CPU). Codecs that MP4 players do
not handle are transcoded to AAC instead. When the video is retimed to another rate the audio
would drift out of sync, so it is dropped (and the caller logs why).

The audio is read from its own demuxer over the same file, in step with the video being written
(`copy_until`), so the muxer can interleave both without buffering the whole track.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from fractions import Fraction

import av

from rife_core.video.probe import VideoInfo

LogFn = Callable[[str, str], None]

# Codecs that MP4 carries and common players decode; others are transcoded to AAC.
MP4_COPY_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
AAC_BITRATE = 192_000
_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 8: "7.1"}


class AudioTrack:
    """The audio part of one output: copied or transcoded packets from the input's audio stream."""

    def __init__(self, info: VideoInfo, transcode: bool) -> None:
        assert info.audio is not None
        self.transcode = transcode
        self._path = info.path
        self._index = info.audio.index
        self._offset_s = info.start_s  # output time 0 is the first video frame
        self._input: av.container.InputContainer | None = None
        self._out: av.container.OutputContainer | None = None
        self._out_stream: av.stream.Stream | None = None
        self._aac: av.audio.stream.AudioStream | None = None  # set when transcoding
        self._packets: Iterator[av.Packet] | None = None
        self._pending: av.Packet | None = None
        self._done = False

    def start_video_at(self, lead_s: float) -> None:
        """The output's video starts `lead_s` after output time 0 (audio that begins before the video
        keeps its head start), so the audio moves with it: the offset between the two stays the input's."""
        assert self._out is None, "set before the track is attached"
        self._offset_s -= lead_s

    def attach(self, out: av.container.OutputContainer) -> None:
        """Add the audio stream to `out` (before its header is written)."""
        self._input = av.open(os.fspath(self._path), "r")
        src = next(s for s in self._input.streams.audio if s.index == self._index)
        self._out = out
        if self.transcode:
            ctx = src.codec_context
            aac = out.add_stream("aac", rate=ctx.sample_rate)
            # A named layout: the encoder refuses "N channels" layouts without a channel order.
            aac.layout = _AAC_LAYOUTS.get(ctx.layout.nb_channels, "stereo")
            aac.bit_rate = AAC_BITRATE
            aac.codec_context.open()  # fail here, before the file's header is written, if at all
            self._out_stream = self._aac = aac
        else:
            self._out_stream = out.add_stream_from_template(src)
        self._packets = iter(self._input.demux(src))

    def _next_packet(self) -> av.Packet | None:
        assert self._packets is not None
        for packet in self._packets:
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's end-of-stream marker
            return packet
        return None

    def copy_until(self, t: float | None) -> None:
        """Write the input's audio up to time `t` of the output (everything left when None)."""
        if self._done or self._out is None:
            return
        while True:
            packet = self._pending or self._next_packet()
            self._pending = None
            if packet is None:
                self._finish()
                return
            ts = packet.pts if packet.pts is not None else packet.dts
            when = float(ts * packet.time_base) - self._offset_s if ts is not None else 0.0
            if t is not None and when > t:
                self._pending = packet
                return
            self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        assert self._out is not None and self._out_stream is not None
        if self._aac is not None:
            for frame in packet.decode():
                if isinstance(frame, av.AudioFrame):
                    frame.pts = None  # the encoder numbers samples itself
                    for out_packet in self._aac.encode(frame):
                        self._out.mux(out_packet)
            return
        shift = round(Fraction(self._offset_s).limit_denominator(1_000_000) / packet.time_base)
        if shift:
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        packet.stream = self._out_stream
        self._out.mux(packet)

    def _finish(self) -> None:
        self._done = True
        if self._aac is not None and self._out is not None:
            for out_packet in self._aac.encode(None):
                self._out.mux(out_packet)

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
            self._input = None


def plan_audio(info: VideoInfo, duration_kept: bool, log: LogFn) -> AudioTrack | None:
    """Decide what happens to the input's audio, and say so in the log."""
    if info.audio is None:
        return None
    codec = info.audio.codec
    if not duration_kept:
        log("INFO", f"audio dropped: the video is retimed to a new frame rate, so the {codec} track would no longer be in sync")
        return None
    if codec in MP4_COPY_CODECS:
        log("INFO", f"audio kept: {codec} stream copied unchanged")
        return AudioTrack(info, transcode=False)
    log("INFO", f"audio transcoded: {codec} does not go into MP4 as is, re-encoding it as AAC")
    return AudioTrack(info, transcode=True)
