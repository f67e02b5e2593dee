"""Archives as an attacker writes them, for the archive tests: any member, any type, and bombs.

The bombs are real archives (they unpack to a GiB of zeros with any tool) written in a few MB and
well under a second: a piece of deflate data that stands alone (compressed after a full flush)
is repeated, rather than compressing the zeros.
"""

from __future__ import annotations

import functools
import io
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

MIB = 1 << 20
GIB = 1 << 30


def folder_members(folder: Path, prefix: str = "") -> list[tuple[str, bytes]]:
    """``(name, content)`` of every file of a saved model folder, names prefixed with ``prefix``."""
    return [
        (prefix + path.relative_to(folder).as_posix(), path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]


def file_info(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def special_info(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    """A tar entry of any type (symlink, hardlink, FIFO, device, folder), with no content."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, b""


def tar_archive(
    path: Path, entries: Sequence[tuple[tarfile.TarInfo, bytes]], compression: str = "gz"
) -> Path:
    """A tar (``compression`` "", "gz", "bz2" or "xz") holding exactly ``entries``, names as given."""
    with tarfile.open(path, f"w:{compression}", format=tarfile.GNU_FORMAT) as tar:
        for info, content in entries:
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return path


def zip_archive(
    path: Path, files: Sequence[tuple[str, bytes]], symlinks: Sequence[tuple[str, str]] = ()
) -> Path:
    """A zip of ``files`` (names as given, duplicates kept) and Unix ``symlinks`` (name, target)."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        for name, content in files:
            archive.writestr(name, content)
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix, so external_attr holds a mode
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


# -- bombs --------------------------------------------------------------------------------------------


def _deflated_zeros(size: int, prefix: bytes = b"") -> Iterator[bytes]:
    """Raw deflate data of ``prefix`` then ``size`` zero bytes (a multiple of a MiB), in pieces."""
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    yield first.compress(prefix) + first.flush(zlib.Z_FULL_FLUSH)
    # After a full flush a piece refers to nothing before it: the same bytes again are another MiB.
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = zeros.compress(bytes(MIB)) + zeros.flush(zlib.Z_FULL_FLUSH)
    for _ in range(size // MIB):
        yield piece
    yield zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # the final, empty block


@functools.lru_cache
def _zeros_crc(size: int, start: int = 0) -> int:
    zeros, crc = bytes(MIB), start
    for _ in range(size // MIB):
        crc = zlib.crc32(zeros, crc)
    return crc


def zeros_zip(path: Path, name: str = "zeros.bin", size: int = GIB) -> Path:
    """A zip whose one member inflates to ``size`` zero bytes, with true sizes and CRC in its headers."""
    encoded = name.encode()
    crc = _zeros_crc(size)
    with path.open("wb") as out:
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 33, crc, 0, size, len(encoded), 0))
        out.write(encoded)
        compressed = sum(out.write(piece) for piece in _deflated_zeros(size))
        central = out.tell()
        out.seek(18)  # the local header's compressed size, known now
        out.write(struct.pack("<I", compressed))
        out.seek(central)
        out.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                33,
                crc,
                compressed,
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                0,
            )
        )
        out.write(encoded)
        directory_size = out.tell() - central
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, directory_size, central, 0))
    return path


def zeros_tar_gz(path: Path, name: str = "zeros.bin", size: int = GIB, kind: bytes = tarfile.REGTYPE) -> Path:
    """A tar.gz whose one entry of type ``kind`` holds ``size`` zero bytes (GNUTYPE_LONGNAME: a 1 GiB name)."""
    info = tarfile.TarInfo("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else name)
    info.size, info.type = size, kind
    header = info.tobuf(tarfile.GNU_FORMAT)
    zeros = size + MIB  # the content, then the end-of-archive blocks
    crc = _zeros_crc(zeros, zlib.crc32(header))
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")  # gzip: deflate, no name, no time
        for piece in _deflated_zeros(zeros, prefix=header):
            out.write(piece)
        out.write(struct.pack("<II", crc, (len(header) + zeros) & 0xFFFFFFFF))
    return path
