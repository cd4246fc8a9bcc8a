"""Say in a user's words what went wrong with a file: what it looks like, and why FFmpeg refused it.

FFmpeg's own errors ("[Errno 1094995529] Invalid data found when processing input:
'avcodec_send_packet()'") mean nothing to the person who sent the file, and they quote local
paths. So the pipeline never passes them on: `looks_like` names what the first bytes of a file
that is not media actually are (a web page saved instead of the video is the classic), and
`plain_reason` turns an FFmpeg error into a short cause. Neither needs FFmpeg to succeed.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import av

# Magic numbers of files people send by mistake, checked in order against the first bytes.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ", "a Windows program"),
)
_Y4M_HEADER = re.compile(rb"^YUV4MPEG2 (?P<params>[^\n]*)\n")


def looks_like(path: Path) -> str | None:
    """What the file seems to be when it is not media (None when the bytes say nothing clear)."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 4096th byte is still text.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not text or any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        return None
    lowered = text.lstrip().lower()
    if lowered.startswith(("<!doctype html", "<html")) or "<html" in lowered[:512]:
        return "a web page (HTML), not the video itself"
    if lowered.startswith(("<?xml", "<")):
        return "an XML or HTML document"
    if lowered.startswith(("{", "[")):
        return "a JSON document"
    return "a text file"


def is_animated_webp(path: Path) -> bool:
    """A RIFF/WEBP file with an ANIM chunk: FFmpeg's WebP decoder (8.1) decodes still images only."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP" and b"ANIM" in head


def y4m_size(path: Path) -> tuple[int, int] | None:
    """The frame size a YUV4MPEG2 header declares, read without FFmpeg: its demuxer refuses absurd
    sizes with an unrelated errno before anyone can ask it for the size."""
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError:
        return None
    match = _Y4M_HEADER.match(head)
    if match is None:
        return None
    fields = {p[:1]: p[1:] for p in match["params"].split(b" ") if p}
    try:
        return int(fields[b"W"]), int(fields[b"H"])
    except (KeyError, ValueError):
        return None


def plain_reason(exc: BaseException) -> str:
    """A short cause for an FFmpeg error, without errno numbers, function names or paths."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, EOFError):
        return "the data ends early (the file looks truncated)"
    if isinstance(exc, av.error.InvalidDataError):
        return "its data is invalid or damaged"
    if isinstance(exc, av.error.PatchWelcomeError | av.error.DecoderNotFoundError | av.error.DemuxerNotFoundError):
        return "it uses a format or codec this service cannot decode"
    if code in (errno.ENOMEM, errno.EBUSY, errno.EINVAL, errno.ERANGE, errno.EFBIG):
        return "it declares something this decoder cannot handle (frame size or format)"
    if code in (errno.EIO, errno.ENOENT, errno.EACCES):
        return "it could not be read"
    return "it could not be decoded"
