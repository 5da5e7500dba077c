"""Gzipped segments that can be entered at a seq: a run of gzip members, each saying where it starts.

A ``.gz`` segment is written as consecutive gzip members (RFC 1952 allows any
number; ``zcat`` and Python's ``gzip`` read them as one stream), each holding whole
lines, about ``MEMBER_BYTES`` of them. Each member's header carries an extra field
(``FEXTRA``, subfield ``CL``) with the seq of its first line and the length of its
compressed data, so a reader hops from header to header (28 bytes read per member,
no decompression) to the member holding a seq, and decompresses from there: entering
a segment costs one member, not everything before it. No side file to keep in step:
the index is the file. A ``.gz`` without these headers (written by an older version)
is read from its start, as before.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MEMBER_BYTES = 128 * 1024  # uncompressed bytes per member: what entering a segment decompresses at most
_FORMAT = "<2sBBIBBH2sHQI"  # magic, CM, FLG, MTIME, XFL, OS, XLEN, SI1+SI2, LEN, first seq, deflate length
_HEADER = struct.calcsize(_FORMAT)  # 28
_MAGIC = b"\x1f\x8b"
_DEFLATE = 8
_FEXTRA = 4
_UNIX = 3
_SUBFIELD = b"CL"  # "chat log"
_SUBFIELD_BYTES = 12
_TRAILER = 8  # CRC32 and ISIZE


@dataclass(frozen=True)
class Member:
    first_seq: int
    offset: int


def write(source: BinaryIO, target: BinaryIO, mtime: int) -> None:
    """Compress ``source`` (chat.log lines) into ``target`` as members of whole lines, each indexed."""
    target.writelines(member(block, mtime) for block in _blocks(source))


def member(block: bytes, mtime: int) -> bytes:
    """One gzip member holding ``block`` (whole lines), its header naming the block's first seq."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = packer.compress(block) + packer.flush()
    head = block.split(b" ", 1)[0]
    first_seq = int(head) if head.isdigit() else 0
    extra_length = 4 + _SUBFIELD_BYTES
    header = struct.pack(
        _FORMAT,
        _MAGIC,
        _DEFLATE,
        _FEXTRA,
        mtime,
        0,
        _UNIX,
        extra_length,
        _SUBFIELD,
        _SUBFIELD_BYTES,
        first_seq,
        len(deflated),
    )
    return header + deflated + struct.pack("<II", zlib.crc32(block), len(block) & 0xFFFFFFFF)


def _blocks(source: BinaryIO) -> Iterator[bytes]:
    """``source`` cut at newlines into blocks of about ``MEMBER_BYTES`` (a longer line makes a longer one)."""
    rest = b""
    while chunk := source.read(MEMBER_BYTES):
        data = rest + chunk
        end = data.rfind(b"\n") + 1
        if end == 0:
            rest = data
            continue
        yield data[:end]
        rest = data[end:]
    if rest:
        yield rest


def members(raw: BinaryIO) -> list[Member]:
    """The indexed members of an open ``.gz``, in order; empty for a file written without the index.

    Stops at the first header that is not one of ours (the rest is then read on from
    the last member found, as one stream).
    """
    found: list[Member] = []
    size = raw.seek(0, os.SEEK_END)
    offset = 0
    while offset + _HEADER <= size:
        raw.seek(offset)
        fields = struct.unpack(_FORMAT, raw.read(_HEADER))
        if not _ours(fields):
            break
        found.append(Member(fields[-2], offset))
        offset += _HEADER + fields[-1] + _TRAILER
    return found


def _ours(fields: tuple[object, ...]) -> bool:
    magic, method, flags, _, _, _, extra_length, subfield, subfield_bytes, _, _ = fields
    expected = (_MAGIC, _DEFLATE, _FEXTRA, 4 + _SUBFIELD_BYTES, _SUBFIELD, _SUBFIELD_BYTES)
    return (magic, method, flags, extra_length, subfield, subfield_bytes) == expected


def offset_after(found: list[Member], seq: int) -> int:
    """Where to start decompressing to reach the first line above ``seq``: the member that holds it."""
    offset = 0
    for entry in found:
        if entry.first_seq > seq + 1:
            break
        offset = entry.offset
    return offset


def offset_for_last(found: list[Member], count: int) -> int:
    """Where to start decompressing so that the last ``count`` lines are all read."""
    if not found:
        return 0
    last_first = found[-1].first_seq
    offset = 0
    for entry in found:
        if last_first - entry.first_seq + 1 < count:  # the last member holds one line at least
            break
        offset = entry.offset
    return offset


def unpacked(raw: BinaryIO, choose_offset: Callable[[list[Member]], int]) -> BinaryIO:
    """The open ``.gz`` ``raw``, decompressed from the member ``choose_offset`` picks (0: the start)."""
    raw.seek(choose_offset(members(raw)))
    return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]  # reads on from here, member after member; leaves ``raw`` open


def is_indexed(path: Path) -> bool:
    """True when the file's first member names its first seq (a ``.gz`` of this version)."""
    with path.open("rb", buffering=0) as raw:
        header = raw.read(_HEADER)
    return len(header) == _HEADER and _ours(struct.unpack(_FORMAT, header))
