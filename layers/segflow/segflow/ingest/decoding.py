"""From a dropped object to a byte stream of known format and a text encoding, without reading it all.

Detection, in this order (all on the first SAMPLE_BYTES, after gzip decompression when the data starts with
the gzip magic bytes):
- Parquet: starts with b"PAR1".
- Zip/xlsx, bzip2, xz, zstd: refused as "unsupported_format" (only gzip compression is supported).
- Text: a UTF-8 or UTF-16 byte-order mark decides; else UTF-8 when the sample is valid UTF-8; else
  Windows-1252 (the common superset of Latin-1). Bytes invalid in the chosen encoding later in the file are
  read as Latin-1 instead of failing, so one stray byte never loses a file.
- Binary garbage: NUL bytes, or more than 5% control characters in the decoded sample -> "binary".
- JSON Lines when the first non-blank character is "{"; a JSON array ("[") is refused; else CSV.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Literal

SAMPLE_BYTES = 64 * 1024
FALLBACK_ERRORS = "segflow-latin1-fallback"
Format = Literal["csv", "jsonl", "parquet", "empty"]


class UnreadableFile(Exception):
    """The file as a whole cannot be read; `reason` is a machine-readable code.

    Codes: bad_gzip, binary, bad_parquet, bad_csv, unsupported_format, missing_columns.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)  # both in args, so the exception pickles
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def _latin1_fallback(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return err.object[err.start : err.end].decode("latin-1"), err.end


codecs.register_error(FALLBACK_ERRORS, _latin1_fallback)

_REFUSED_MAGIC = {
    b"PK\x03\x04": "zip archives (including .xlsx) are not supported; export CSV",
    b"BZh": "bzip2 compression is not supported; use gzip",
    b"\xfd7zXZ\x00": "xz compression is not supported; use gzip",
    b"\x28\xb5\x2f\xfd": "zstd compression is not supported; use gzip",
}


class _GzipErrors(io.RawIOBase):
    """Turns gzip decoding errors, wherever in the stream they happen, into UnreadableFile."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except (OSError, EOFError, zlib.error) as err:
            raise UnreadableFile("bad_gzip", f"gzip data is corrupt or truncated ({err})") from err
        buffer[: len(data)] = data
        return len(data)


class _Prefixed(io.RawIOBase):
    """A stream that replays an already-read head before the rest of the underlying stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass
class Source:
    """A decompressed byte stream (head replayed), its format and, for text, its encoding."""

    stream: io.BufferedReader
    format: Format
    encoding: str | None
    head: bytes


def open_binary(
    data: bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str],
) -> tuple[BinaryIO, bool]:
    """(stream, opened_here): paths are opened (the caller closes them), bytes wrapped, streams used as-is."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data)), False
    if isinstance(data, (str, os.PathLike)):
        return open(data, "rb"), True
    return data, False


def _read_head(stream: BinaryIO, size: int) -> bytes:
    parts, remaining = [], size
    while remaining > 0:  # raw streams may return short reads
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def detect(stream: BinaryIO) -> Source:
    head = _read_head(stream, SAMPLE_BYTES)
    if head[:2] == b"\x1f\x8b":
        inner: BinaryIO = _GzipErrors(gzip.GzipFile(fileobj=_Prefixed(head, stream)))  # type: ignore[assignment]
        stream = io.BufferedReader(inner)  # type: ignore[arg-type]
        head = _read_head(stream, SAMPLE_BYTES)
    replay = io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 20)  # type: ignore[arg-type]
    if head[:4] == b"PAR1":
        return Source(replay, "parquet", None, head)
    for magic, message in _REFUSED_MAGIC.items():
        if head.startswith(magic):
            raise UnreadableFile("unsupported_format", message)
    encoding = _text_encoding(head)
    text = head.decode(encoding, errors=FALLBACK_ERRORS) if encoding != "utf-8" else _decode_prefix(head)
    text = text.lstrip("\ufeff")
    if not text.strip():
        return Source(replay, "empty", encoding, head)
    _refuse_binary(text, head, encoding)
    first = text.lstrip()[0]
    if first == "[":
        raise UnreadableFile("unsupported_format", "JSON arrays are not supported; use JSON Lines")
    return Source(replay, "jsonl" if first == "{" else "csv", encoding, head)


def _decode_prefix(head: bytes) -> str:
    # An incremental decoder tolerates a multi-byte character cut at the end of the sample.
    return codecs.getincrementaldecoder("utf-8")(errors=FALLBACK_ERRORS).decode(head, final=False)


def _text_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def _refuse_binary(text: str, head: bytes, encoding: str) -> None:
    if encoding != "utf-16" and b"\x00" in head:
        raise UnreadableFile("binary", "the file contains NUL bytes: not a text, JSON Lines or Parquet file")
    control = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n") or 0x7F <= ord(ch) <= 0x9F)
    if control > 0.05 * len(text):
        raise UnreadableFile("binary", "the file is mostly control characters: not a text file")
