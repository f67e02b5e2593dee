"""Saved model folders as archives, for uploads to a bpcore server: pack, unpack within limits, install.

An uploaded archive is untrusted input (see SECURITY.md). :func:`unpack_archive` takes tar (plain,
gzip, bzip2 or xz) and zip, told apart by their first bytes, and writes nothing but plain files and
folders inside the folder it is given. It refuses, with an :class:`~bpcore.errors.InputError`
(``field="archive"``) naming the member: links, devices and FIFOs, absolute paths, ``..``, a
member reaching outside the folder, a name given twice, more entries or bytes than
:class:`ArchiveLimits` allows (bytes are counted as they are written, never taken from headers),
more bytes than ``max_ratio`` times the archive's size (a decompression bomb), and an archive
that is damaged or neither tar nor zip. Whatever the error, the folder it was unpacking into is
removed.

:func:`install_uploaded` then holds the unpacked folder to :func:`bpcore.load`'s rules (no code:
a registered model class, no pickle unless the server trusts pickles), loads it once to prove it
works, and swaps it in under ``$BPCORE_HOME`` as :func:`bpcore.save` does: killing the process at
any instant leaves the previous model of that name in place, and the next upload or save of the
name removes what the killed one left. A server does::

    staged = staging_folder(name)               # on home's filesystem, cleaned if the process dies
    unpack_archive(upload, staged)              # InputError(field="archive"), staged removed
    install_uploaded(staged, name, overwrite=False, trust_pickle=False)

or, the same in one call, ``install_archive(upload, name, overwrite=False, trust_pickle=False)``.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol

import attrs

from bpcore import saving
from bpcore.errors import BpcoreError, InputError, ModelLoadError, UnsafeLoadError
from bpcore.naming import check_model_name

FIELD = "archive"
#: Bytes read and written at a time.
CHUNK = 1 << 20
#: One name in a path is at most this many bytes (Linux's NAME_MAX).
MAX_NAME_BYTES = 255
#: What an xz stream may make the decoder allocate (``xz -9`` needs 65 MiB): a crafted header can ask for GiBs.
XZ_MEMORY_LIMIT = 256 << 20
#: tarfile reads a long-name or pax header whole into memory, so the bytes of a tar stream that
#: are no file's content are bounded: this much, plus HEADER_BYTES_PER_ENTRY per entry so far.
HEADER_SLACK = 4 << 20
HEADER_BYTES_PER_ENTRY = 16 << 10
#: A zip directory entry is 46 bytes and the name; this allows for extra fields and a comment.
ZIP_EXTRA_BYTES_PER_ENTRY = 1 << 10

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_TOP = PurePosixPath()  # a folder's own path, relative to itself
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")
_TAR_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}
_ZIP_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}
#: What the archive readers raise on damaged input (tarfile, zipfile, gzip, bz2 and lzma each their own).
_DAMAGED = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,  # a zip compression method zipfile lacks
    RuntimeError,  # an encrypted zip member
)


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"must be a positive number, got {value!r}", field=attribute.name)


@attrs.frozen
class ArchiveLimits:
    """What an uploaded archive may unpack to; beyond any limit it is refused (InputError naming the member)."""

    #: Bytes of all files together, uncompressed, counted as they are written.
    max_bytes: int = attrs.field(default=4 << 30, validator=_positive)
    #: Entries: files and folders.
    max_files: int = attrs.field(default=1_000, validator=_positive)
    #: Uncompressed bytes per byte of archive; more is a decompression bomb.
    max_ratio: float = attrs.field(default=200.0, validator=_positive)
    #: Bytes (UTF-8) of one member's path in the archive.
    max_path_length: int = attrs.field(default=1_024, validator=_positive)


DEFAULT_LIMITS = ArchiveLimits()


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _refused(member: str, problem: str) -> InputError:
    return InputError(f"member {member!r:.200} {problem}", field=FIELD)


@contextlib.contextmanager
def _reading(where: str) -> Iterator[None]:
    """What a damaged archive makes the readers raise, as an InputError saying ``where`` it happened."""
    try:
        yield
    except InputError:
        raise
    except _DAMAGED as error:
        raise InputError(
            f"{where} cannot be read: the archive is damaged or is neither tar nor zip "
            f"({type(error).__name__}: {str(error):.200})",
            field=FIELD,
        ) from None


class _Budget:
    """The entries and bytes unpacked so far, against the limits."""

    def __init__(self, limits: ArchiveLimits, archive_bytes: int) -> None:
        self.limits = limits
        self.archive_bytes = archive_bytes
        self.entries = 0
        self.bytes = 0

    def count_entry(self, member: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise self.too_many(member)

    def too_many(self, member: str) -> InputError:
        return _refused(member, f"is one entry too many: an archive holds at most {self.limits.max_files}")

    def check(self, member: str, more: int) -> None:
        """Refuse ``more`` bytes for ``member`` if they would take the total past a limit."""
        total = self.bytes + more
        if total > self.limits.max_bytes:
            raise _refused(member, f"takes the files past {self.limits.max_bytes} bytes uncompressed")
        if total > self.limits.max_ratio * self.archive_bytes:
            raise _refused(
                member,
                f"takes the files past {self.limits.max_ratio:g} times the archive's {self.archive_bytes} "
                "bytes: a decompression bomb",
            )

    def add(self, member: str, count: int) -> None:
        self.check(member, count)
        self.bytes += count


class _Tree:
    """The folder being unpacked into: checks each member's name and writes only files and folders in it."""

    def __init__(self, root: Path, budget: _Budget) -> None:
        self.root = root
        self.budget = budget
        self.last: str | None = None  #: the member read last, to say where a damaged archive broke
        self._files: set[PurePosixPath] = set()
        self._folders: set[PurePosixPath] = set()  # made for a member, or as a parent of one
        self._listed_folders: set[PurePosixPath] = set()  # members themselves

    def next_header(self) -> str:
        """Where the tar header being read is, for errors."""
        return (
            "the first tar header" if self.last is None else f"the tar header after member {self.last!r:.200}"
        )

    def enter(self, member: str) -> PurePosixPath | None:
        """Count the member and check its name: its path in the folder, or None for the folder itself."""
        self.last = member
        self.budget.count_entry(member)
        return member_path(member, self.budget.limits)

    def add_folder(self, member: str, path: PurePosixPath | None) -> None:
        if path is None:
            return  # "./": the folder itself
        if path in self._files or path in self._listed_folders:
            raise _refused(member, f"is given twice: the archive holds {path.as_posix()!r} more than once")
        self._make_parents(member, path)
        if path not in self._folders:
            self._place(member, path).mkdir()
            self._folders.add(path)
        self._listed_folders.add(path)

    def add_file(self, member: str, path: PurePosixPath | None, source: _Readable) -> None:
        """Write the file, counting its bytes as they come (a header's size is never trusted)."""
        if path is None:
            raise _refused(member, "is a file named like the folder itself")
        if path in self._files or path in self._folders:
            raise _refused(member, f"is given twice: the archive holds {path.as_posix()!r} more than once")
        self._make_parents(member, path)
        self._files.add(path)
        with open(self._place(member, path), "xb") as out:  # "x": O_EXCL, never through a link
            while True:
                with _reading(f"member {member!r:.200}"):
                    chunk = source.read(CHUNK)
                if not chunk:
                    return
                self.budget.add(member, len(chunk))
                out.write(chunk)

    def _make_parents(self, member: str, path: PurePosixPath) -> None:
        for parent in reversed(path.parents[:-1]):  # a, a/b for a/b/c
            if parent in self._files:
                raise _refused(member, f"lies under {parent.as_posix()!r}, which the archive holds as a file")
            if parent not in self._folders:
                self._place(member, parent).mkdir()
                self._folders.add(parent)

    def _place(self, member: str, path: PurePosixPath) -> Path:
        """``root / path``, checked to resolve inside the root (nothing here makes links; this is a backstop)."""
        place = self.root / path
        root, parent = os.path.realpath(self.root), os.path.realpath(place.parent)
        if not (parent == root or parent.startswith(root + os.sep)) or os.path.lexists(place):
            raise _refused(member, "would be written outside the folder, or over an entry already there")
        return place


def member_path(member: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> PurePosixPath | None:
    """The path a member's name gives inside the folder (None for the folder itself), or InputError.

    Refused: a name longer than ``limits.max_path_length`` bytes (or a part of it longer than
    255), an absolute path (``/x``, ``C:x``), ``..``, a backslash and control characters.
    ``.`` and empty parts drop out, so ``./config.json`` is ``config.json``.
    """
    if len(member.encode("utf-8", "surrogateescape")) > limits.max_path_length:
        raise _refused(member, f"has a path longer than {limits.max_path_length} bytes")
    if "\\" in member or any(ord(character) < 32 or ord(character) == 127 for character in member):
        raise _refused(member, "has a backslash or a control character in its name")
    if member.startswith("/") or _WINDOWS_DRIVE.match(member):
        raise _refused(member, "is an absolute path; members must be relative to the folder")
    parts = [part for part in member.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refused(member, "leaves the folder ('..')")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in parts):
        raise _refused(member, f"has a name longer than {MAX_NAME_BYTES} bytes")
    return PurePosixPath(*parts) if parts else None


# -- tar ----------------------------------------------------------------------------------------------


class _XzReader(io.RawIOBase):
    """An .xz stream decoded within XZ_MEMORY_LIMIT (lzma.LZMAFile takes no memory limit)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._decoder.eof:  # concatenated streams, as xz writes them
                rest = self._decoder.unused_data or self._raw.read(CHUNK)
                if not rest:
                    return 0
                self._decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)
            else:
                rest = self._raw.read(CHUNK) if self._decoder.needs_input else b""
                if self._decoder.needs_input and not rest:
                    raise EOFError("the xz stream ends before its end marker")
            data = self._decoder.decompress(rest, len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)


class _HeaderBound(io.RawIOBase):
    """The uncompressed tar stream, refusing more header bytes (those of no file's content) than allowed."""

    def __init__(self, stream: _Readable, tree: _Tree) -> None:
        self._stream = stream
        self._tree = tree
        self._total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), CHUNK))
        buffer[: len(data)] = data
        self._total += len(data)
        budget = self._tree.budget
        # Reading runs ahead of writing by at most one CHUNK: HEADER_SLACK covers it.
        if self._total - budget.bytes > HEADER_SLACK + HEADER_BYTES_PER_ENTRY * budget.entries:
            raise InputError(
                f"{self._tree.next_header()} is larger than any model's: a decompression bomb", field=FIELD
            )
        return len(data)


def _tar_stream(raw: BinaryIO, magic: bytes) -> _Readable:
    """The archive's uncompressed tar bytes, decompressed by what its first bytes say (not its name)."""
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return io.BufferedReader(_XzReader(raw))
    return raw


def _unpack_tar(raw: BinaryIO, magic: bytes, tree: _Tree) -> None:
    # Read as a stream, in order: each file's bytes pass through the budget as they are written.
    stream = io.BufferedReader(_HeaderBound(_tar_stream(raw, magic), tree))
    with _reading("the archive"):
        tar = tarfile.open(fileobj=stream, mode="r|")
    with tar:
        for member in _tar_members(tar, tree):
            _unpack_tar_member(tar, member, tree)


def _tar_members(tar: tarfile.TarFile, tree: _Tree) -> Iterator[tarfile.TarInfo]:
    while True:
        with _reading(tree.next_header()):
            member = tar.next()
        if member is None:
            return
        yield member


def _unpack_tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, tree: _Tree) -> None:
    name = member.name
    path = tree.enter(name)
    if not (member.isreg() or member.isdir()):
        kind = _TAR_KINDS.get(member.type, f"an entry of type {member.type!r}")
        target = f" to {member.linkname!r:.200}" if member.issym() or member.islnk() else ""
        raise _refused(name, f"is {kind}{target}; a model archive holds only files and folders")
    try:  # tarfile's own checks for untrusted archives, after ours
        tarfile.data_filter(member, os.fspath(tree.root))
    except tarfile.FilterError as error:
        raise _refused(name, f"is refused by tarfile's data filter: {error}") from None
    if member.isdir():
        tree.add_folder(name, path)
        return
    tree.budget.check(name, member.size)  # a header may only ever refuse early, never allow
    with _reading(f"member {name!r:.200}"):
        source = tar.extractfile(member)
    if source is None:
        raise _refused(name, "has no content to read")
    tree.add_file(name, path, source)


# -- zip ----------------------------------------------------------------------------------------------


def _check_zip_directory(raw: BinaryIO, limits: ArchiveLimits) -> None:
    """Refuse a zip directory larger than ``limits.max_files`` entries take, before zipfile reads it all.

    zipfile parses the whole central directory into memory before any entry can be counted: a
    crafted one as large as the upload would take many times its size. Anything else wrong with
    the end records is left for zipfile to refuse.
    """
    size = raw.seek(0, os.SEEK_END)
    raw.seek(max(0, size - (22 + 0xFFFF)))  # the end record, then at most a 64 KiB comment
    tail = raw.read()
    end = tail.rfind(b"PK\x05\x06")
    directory = struct.unpack_from("<I", tail, end + 12)[0] if 0 <= end <= len(tail) - 22 else 0
    zip64 = struct.unpack_from("<Q", tail, end - 12)[0] if end >= 20 else size
    if tail[end - 20 : end - 16] == b"PK\x06\x07" and zip64 < size:  # zipfile goes by the zip64 record
        raw.seek(zip64)
        record = raw.read(56)
        if record[:4] == b"PK\x06\x06":
            directory = max(directory, struct.unpack_from("<Q", record, 40)[0])
    raw.seek(0)
    limit = limits.max_files * (46 + limits.max_path_length + ZIP_EXTRA_BYTES_PER_ENTRY)
    if directory > limit:
        raise InputError(
            f"the zip directory takes {directory} bytes, more than {limits.max_files} entries can "
            f"({limit} bytes)",
            field=FIELD,
        )


def _unpack_zip(raw: BinaryIO, tree: _Tree) -> None:
    _check_zip_directory(raw, tree.budget.limits)
    with _reading("the archive"):
        archive = zipfile.ZipFile(raw)
    with archive:
        members = archive.infolist()
        limit = tree.budget.limits.max_files
        if len(members) > limit:  # refused before anything is written
            raise tree.budget.too_many(members[limit].orig_filename)
        for info in members:
            _unpack_zip_member(archive, info, tree)


def _unpack_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, tree: _Tree) -> None:
    name = info.orig_filename  # zipfile cuts .filename at a NUL; the whole name is checked
    path = tree.enter(name)
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind in _ZIP_KINDS:  # 0 (no Unix mode: a DOS or Windows zip), a file or a folder are fine
        raise _refused(name, f"is {_ZIP_KINDS[kind]}; a model archive holds only files and folders")
    if info.is_dir():
        tree.add_folder(name, path)
        return
    tree.budget.check(name, info.file_size)  # a header may only ever refuse early, never allow
    with _reading(f"member {name!r:.200}"):
        source = archive.open(info)
    with source:
        tree.add_file(name, path, source)


# -- unpacking ----------------------------------------------------------------------------------------


def unpack_archive(archive: Path, into: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Unpack a tar (plain, gz, bz2, xz) or zip archive of a model folder into the folder ``into``.

    The kind is told from the archive's first bytes, never its name. ``into`` must not exist or be
    empty. An archive of the folder itself (``my-model/config.json``, ...) and one of its
    contents (``config.json``, ...) both unpack with ``config.json`` directly in ``into``.
    Whatever goes wrong, ``into`` is removed before the error propagates; a refused archive is an
    :class:`~bpcore.errors.InputError` (``field="archive"``) naming the member (module docstring).
    """
    into.mkdir(parents=True, exist_ok=True)
    if any(into.iterdir()):
        raise InputError(f"{into} is not empty; unpack into a new folder", field="into")
    try:
        with archive.open("rb") as raw:
            tree = _Tree(into, _Budget(limits, os.fstat(raw.fileno()).st_size))
            magic = raw.read(8)
            raw.seek(0)
            if magic.startswith(_ZIP_MAGIC):
                _unpack_zip(raw, tree)
            else:
                _unpack_tar(raw, magic, tree)
        _hoist_single_folder(into)
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise


def _hoist_single_folder(folder: Path) -> None:
    """An archive of the model's folder itself (one top-level folder, no config.json beside it) unpacks flat."""
    entries = list(folder.iterdir())
    if len(entries) != 1 or entries[0].is_symlink() or not entries[0].is_dir():
        return
    top = entries[0]
    children = sorted(child.name for child in top.iterdir())
    # Aside first, under a name none of its entries has (my-model/my-model/... would collide).
    aside = next(
        f".{top.name}-{index}" for index in range(len(children) + 1) if f".{top.name}-{index}" not in children
    )
    top = top.rename(folder / aside)
    for name in children:
        (top / name).rename(folder / name)
    top.rmdir()


# -- packing ------------------------------------------------------------------------------------------


def pack_folder(folder: Path, into: BinaryIO) -> None:
    """Write the saved model folder ``folder`` to ``into`` as a tar.gz that :func:`unpack_archive` takes.

    Entries are relative to the folder (``config.json``, ``sub/x``), plain files and folders only,
    in sorted order and with no times, owners or modes of this machine, so one folder always packs
    to the same bytes. A symlink, FIFO or device in the folder is refused (InputError naming it)
    before anything is written.
    """
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", field="folder")
    entries = list(_folder_entries(folder))
    # Level 1: weights hardly compress, and level 9 would take many times longer for a few percent.
    with gzip.GzipFile(filename="", mode="wb", fileobj=into, mtime=0, compresslevel=1) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for relative, is_folder in entries:
                _add_entry(tar, folder, relative, is_folder)


def _folder_entries(folder: Path, relative: PurePosixPath = _TOP) -> Iterator[tuple[PurePosixPath, bool]]:
    """``(path, is_folder)`` for everything in the folder, sorted, each folder before what it holds."""
    with os.scandir(folder / relative) as scan:
        listed = sorted(scan, key=lambda entry: entry.name)
    for entry in listed:
        path = relative / entry.name
        if entry.is_dir(follow_symlinks=False):
            yield path, True
            yield from _folder_entries(folder, path)
        elif entry.is_file(follow_symlinks=False):
            yield path, False
        else:
            kind = "a symbolic link" if entry.is_symlink() else "not a regular file"
            raise InputError(
                f"{path.as_posix()} is {kind}; a model folder holds only files and folders", field="folder"
            )


def _add_entry(tar: tarfile.TarFile, folder: Path, relative: PurePosixPath, is_folder: bool) -> None:
    info = tarfile.TarInfo(relative.as_posix())  # mtime 0, owner 0, no user or group names
    if is_folder:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.mode = 0o644
    no_follow = getattr(os, "O_NOFOLLOW", 0)  # a file swapped for a link since it was listed
    with open(folder / relative, "rb", opener=lambda path, flags: os.open(path, flags | no_follow)) as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{relative.as_posix()} is not a regular file", field="folder")
        info.size = status.st_size
        tar.addfile(info, file)


# -- installing ---------------------------------------------------------------------------------------


def _home(home: Path | None) -> Path:
    return saving.home() if home is None else Path(home)


def staging_folder(name: str, home: Path | None = None) -> Path:
    """A new empty folder in ``home`` (default :func:`bpcore.saving.home`) to unpack an upload of ``name`` into.

    It is ``.{name}.staging-{pid}-…``: on home's filesystem, so :func:`install_uploaded` can swap
    it in atomically, and removed by the next save or upload of ``name`` if this process dies
    first. Checks ``name`` (InputError, ``field="name"``).
    """
    check_model_name(name)
    return saving.staging_folder(_home(home) / name)


def install_uploaded(
    staged: Path, name: str, *, overwrite: bool, trust_pickle: bool, home: Path | None = None
) -> Path:
    """Install the unpacked model folder ``staged`` (from :func:`staging_folder`) as ``home/name``; return it.

    The folder must be one :func:`bpcore.save` wrote, and it is held to :func:`bpcore.load`'s
    rules with no opt-out for code: its class must be one an installed plugin registers
    (UnsafeLoadError), and it may hold a pickle only with ``trust_pickle`` (UnsafeLoadError
    naming the file, even beside weights). Its ``config.json`` is given the name ``name``, so the
    model loads under the name it was uploaded as. It is then loaded once (a ModelLoadError or
    UnsafeLoadError propagates) and swapped in atomically. ``name`` taken and ``overwrite``
    false, or taken by a folder that is no model: InputError (``field="name"``). ``staged`` is
    used up: it becomes the model, or is removed with any error.
    """
    target = _home(home) / check_model_name(name)
    _check_staged(staged, target)
    try:
        _check_name_free(target, name, overwrite)
        _prove(staged, name, trust_pickle)
        try:
            saving.install_folder(staged, target, overwrite=overwrite)
        except InputError:  # the name was taken since _check_name_free
            raise InputError(
                f"a model named {name!r} was installed meanwhile; upload again", field="name"
            ) from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return target


def _prove(staged: Path, name: str, trust_pickle: bool) -> None:
    """Check the staged folder, name it ``name`` and load it once.

    Its errors say "the upload" where they named the staging folder: its path tells a client
    nothing but where the server keeps its models.
    """
    try:
        config = _checked_config(staged, trust_pickle)
        if config.get("name") != name:
            config["name"] = name
            (staged / saving.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        _load_once(staged, trust_pickle)
    except (ModelLoadError, UnsafeLoadError) as error:
        if type(error) not in (ModelLoadError, UnsafeLoadError):  # a subclass may take other arguments
            raise
        message = str(error)
        for path in sorted({str(staged.resolve()), str(staged)}, key=len, reverse=True):
            message = message.replace(path, "the upload")
        raise type(error)(message) from None


def install_archive(
    archive: Path,
    name: str,
    *,
    overwrite: bool,
    trust_pickle: bool,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    home: Path | None = None,
) -> Path:
    """:func:`staging_folder`, :func:`unpack_archive` and :func:`install_uploaded` in one call; the model's folder.

    A name that is taken (and ``overwrite`` false) is refused before the archive is read.
    """
    target = _home(home) / check_model_name(name)
    _check_name_free(target, name, overwrite)
    staged = staging_folder(name, home)
    unpack_archive(archive, staged, limits)
    return install_uploaded(staged, name, overwrite=overwrite, trust_pickle=trust_pickle, home=home)


def _load_once(staged: Path, trust_pickle: bool) -> None:
    """Load the model as :func:`bpcore.load` would, never with ``trust_code``: it must work before it is served."""
    try:
        saving.load(staged, trust_pickle=trust_pickle)
    except BpcoreError:
        raise
    except Exception as error:  # a trusted pickle that does not unpickle: still the upload's fault
        raise ModelLoadError(
            f"the uploaded model does not load ({type(error).__name__}: {str(error):.200})"
        ) from None


def _check_staged(staged: Path, target: Path) -> None:
    """``staged`` is a staging folder for ``target`` (it is removed on errors: never anything else)."""
    beside = staged.parent.resolve() == target.parent.resolve()
    named = staged.name.startswith(f".{target.name}.staging-")
    if not (beside and named and staged.is_dir() and not staged.is_symlink()):
        raise InputError(
            f"{staged} is not a folder that staging_folder({target.name!r}) made in {target.parent}",
            field="staged",
        )


def _check_name_free(target: Path, name: str, overwrite: bool) -> None:
    """Errors name the model, never the server's folders."""
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise InputError(f"a model named {name!r} exists already; pass overwrite to replace it", field="name")
    if target.is_symlink() or not saving.saved_by_bpcore(target):
        raise InputError(
            f"{name!r} is taken by something that is not a bpcore model; choose another name", field="name"
        )


def _checked_config(staged: Path, trust_pickle: bool) -> dict[str, Any]:
    """The staged folder's config, after the checks :func:`bpcore.load` makes before reading one, and no pickle."""
    saving.check_folder(staged)
    if not saving.saved_by_bpcore(staged):
        raise InputError(
            "the archive holds no folder bpcore.save wrote: no bpcore config.json at its top, "
            "nor in its one top-level folder",
            field=FIELD,
        )
    # saving's own reader: size, depth and every field checked (ModelLoadError).
    config = saving._read_config(staged)
    pickle = config.get("pickle") or saving.PICKLE_FILE
    if not trust_pickle and (config.get("pickle") is not None or os.path.lexists(staged / pickle)):
        raise UnsafeLoadError(
            f"member {pickle!r:.200} is a pickle, which runs code when loaded; this server takes no pickles"
        )
    return config
