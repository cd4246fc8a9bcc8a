"""Carry the input's first audio stream into the output when the duration is kept.

Interpolation with the calculated rate keeps the video's duration, so the original audio still
fits: its packets are copied unchanged (no generation loss, no CPU) when the output container
takes the codec. Otherwise it is transcoded to the container's usual codec: AAC for MP4/MOV, Opus
for WebM (the only audio WebM players must play besides Vorbis). Matroska takes any codec. GIF and
WebP hold no audio. When the video is retimed to another rate the audio
would drift out of sync, so it is dropped (and the caller logs why).

The audio is read from its own demuxer over the same file, in step with the video being written
(`copy_until`), so the muxer can interleave both without buffering the whole track.

Audio never fails a job: empty packets (Vorbis in Ogg has them) are skipped, a packet that does
not decode or mux is dropped and counted, and a demuxer that breaks off ends the track there. The
caller logs `dropped` once at the end; a track that cannot be added at all is dropped by the caller
with a WARN.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import cast

import av

from rife_core.video.probe import VideoInfo, is_empty_packet

LogFn = Callable[[str, str], None]

# Codecs that MP4 carries and common players decode; others are transcoded to AAC.
MP4_COPY_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
_PCM = frozenset({"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_f32le"})
# Per output container: the codecs copied as they are, and what anything else is transcoded to.
# None as copy set: every codec is copied (Matroska); no entry: the container holds no audio.
COPY_CODECS: dict[str, frozenset[str] | None] = {
    "mp4": MP4_COPY_CODECS, "mov": MP4_COPY_CODECS | _PCM, "mkv": None, "webm": frozenset({"opus", "vorbis"}),
}
TRANSCODE_TO = {"mp4": "aac", "mov": "aac", "mkv": "aac", "webm": "libopus"}
AAC_BITRATE = 192_000
OPUS_BITRATE = 128_000
_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 8: "7.1"}


class AudioTrack:
    """The audio part of one output: copied or transcoded packets from the input's audio stream."""

    def __init__(self, info: VideoInfo, transcode: bool, codec: str = "aac") -> None:
        """`codec`: the encoder used when transcoding (aac or libopus)."""
        assert info.audio is not None
        self.transcode = transcode
        self.codec = codec
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
        self.dropped = 0  # damaged audio packets left out
        self.broke_off = False  # the audio ended early: the input's audio is damaged or truncated

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
            # Opus runs at 48 kHz only (PyAV resamples the decoded frames to the encoder's rate).
            rate = 48_000 if self.codec == "libopus" else ctx.sample_rate
            aac = cast(av.audio.stream.AudioStream, out.add_stream(self.codec, rate=rate))
            # A named layout: the encoder refuses "N channels" layouts without a channel order.
            aac.layout = _AAC_LAYOUTS.get(ctx.layout.nb_channels, "stereo")
            aac.bit_rate = OPUS_BITRATE if self.codec == "libopus" else AAC_BITRATE
            aac.codec_context.open()  # fail here, before the file's header is written, if at all
            self._out_stream = self._aac = aac
        else:
            self._out_stream = out.add_stream_from_template(src)
        self._packets = iter(self._input.demux(src))

    def _next_packet(self) -> av.Packet | None:
        assert self._packets is not None
        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                return None
            except av.FFmpegError:
                self.broke_off = True
                return None
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's end-of-stream marker
            if is_empty_packet(packet):
                continue  # a decoder would take it for the end of the stream
            return packet

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
        try:
            self._write_packet(packet)
        except av.FFmpegError:
            self.dropped += 1

    def _write_packet(self, packet: av.Packet) -> None:
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
            try:
                for out_packet in self._aac.encode(None):
                    self._out.mux(out_packet)
            except av.FFmpegError:
                self.dropped += 1

    def problems(self) -> str | None:
        """What went wrong with the audio, for one WARN line (None when nothing did)."""
        parts = []
        if self.dropped:
            parts.append(f"{self.dropped} damaged audio packet(s) left out")
        if self.broke_off:
            parts.append("the audio track ends early (damaged or truncated)")
        return "; ".join(parts) or None

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
            self._input = None


def plan_audio(info: VideoInfo, duration_kept: bool, log: LogFn, container: str = "mp4") -> AudioTrack | None:
    """Decide what happens to the input's audio in a `container` output, and say so in the log."""
    if info.audio is None:
        return None
    codec = info.audio.codec
    if not duration_kept:
        log("INFO", f"audio dropped: the video is retimed to a new frame rate, so the {codec} track would no longer be in sync")
        return None
    if container not in TRANSCODE_TO:
        log("INFO", f"audio dropped: a {container} file holds no audio")
        return None
    copyable = COPY_CODECS[container]
    if copyable is None or codec in copyable:
        log("INFO", f"audio kept: {codec} stream copied unchanged")
        return AudioTrack(info, transcode=False)
    target = TRANSCODE_TO[container]
    label = {"aac": "AAC", "libopus": "Opus"}[target]
    log("INFO", f"audio transcoded: {codec} does not go into {container.upper()} as is, re-encoding it as {label}")
    return AudioTrack(info, transcode=True, codec=target)
