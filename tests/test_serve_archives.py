"""Model folders as archives for uploads (bpcore.archives).

A round trip (save, pack, unpack, install, load) gives the same outputs; every crafted archive is
refused with an InputError naming its member and leaves nothing under the home; bombs are refused
without being written; taken names need overwrite; a killed upload leaves a loadable model.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch
from core_helpers import TESTS_DIR, subprocess_env
from crafted_archives import (
    GIB,
    MIB,
    file_info,
    folder_members,
    special_info,
    tar_archive,
    zeros_tar_gz,
    zeros_zip,
    zip_archive,
)
from tiny_models import PlainCallableModel, TinyTextModel

import bpcore
from bpcore.archives import (
    ArchiveLimits,
    install_archive,
    install_uploaded,
    pack_folder,
    staging_folder,
    unpack_archive,
)

TEXTS = ["iPhone 12 128GB", "Apple iPhone 12, 128 GB", "a bag of flour"]


def vectors(model) -> torch.Tensor:
    return torch.as_tensor(model({"text": TEXTS}, task="text-vectorisation"))


def packed(folder: Path, path: Path) -> Path:
    with path.open("wb") as out:
        pack_folder(folder, out)
    return path


def install(archive: Path, name: str = "served", **options) -> Path:
    options = {"overwrite": False, "trust_pickle": False, **options}
    return install_archive(archive, name, **options)


def entries(home: Path) -> list[str]:
    return sorted(path.name for path in home.iterdir()) if home.exists() else []


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[TinyTextModel, Path]]:
    """Two tiny models and their saved folders, saved once: a save takes seconds (it pins requirements)."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("saved")
    models = [TinyTextModel(dim=12, name="tiny-upload") for _ in range(2)]
    return [(model, bpcore.save(model, path=root / str(index))) for index, model in enumerate(models)]


@pytest.fixture
def model(saved_models) -> TinyTextModel:
    return saved_models[0][0]


@pytest.fixture
def saved(saved_models, tmp_path) -> Path:
    """A copy of the model's saved folder, outside the home, for the test to change."""
    return Path(shutil.copytree(saved_models[0][1], tmp_path / "saved" / "tiny-upload"))


@pytest.fixture
def other(saved_models) -> tuple[TinyTextModel, Path]:
    """Another model (other weights) and its saved folder."""
    return saved_models[1]


# -- round trips --------------------------------------------------------------------------------------


def test_save_pack_unpack_install_load_gives_the_same_outputs(model, saved, tmp_path, bpcore_home):
    archive = packed(saved, tmp_path / "model.tar.gz")
    staged = staging_folder("served", bpcore_home)
    assert staged.parent == bpcore_home and staged.name.startswith(".served.staging-")
    unpack_archive(archive, staged)
    folder = install_uploaded(staged, "served", overwrite=False, trust_pickle=False)
    assert folder == bpcore_home / "served"
    assert entries(bpcore_home) == ["served"]  # the staging folder became the model
    loaded = bpcore.load("served")
    assert loaded.name == "served"  # the upload's name, not the saved one
    assert torch.equal(vectors(loaded), vectors(model))


def test_a_packed_folder_is_relative_plain_sorted_and_always_the_same_bytes(saved, tmp_path):
    (saved / "extra").mkdir()
    (saved / "extra" / "notes.txt").write_text("notes")
    first, second = io.BytesIO(), io.BytesIO()
    pack_folder(saved, first)
    os.utime(saved / "config.json", (1, 1))  # times are not packed
    pack_folder(saved, second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue()), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [member.name for member in members] == [
        "config.json",
        "extra",
        "extra/notes.txt",
        "model.safetensors",
        "requirements.txt",
    ]
    assert all(member.isreg() or member.isdir() for member in members)
    assert {(member.mtime, member.uid, member.uname) for member in members} == {(0, 0, "")}


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_packing_refuses_a_symlink_or_fifo_before_writing(saved, kind):
    entry = saved / "extra"
    if kind == "symlink":
        entry.symlink_to("/etc/passwd")
    else:
        os.mkfifo(entry)
    out = io.BytesIO()
    with pytest.raises(bpcore.InputError, match="extra is") as error:
        pack_folder(saved, out)
    assert error.value.field == "folder"
    assert out.getvalue() == b""


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz", "zip"])
@pytest.mark.parametrize("layout", ["flat", "./", "one folder"])
def test_tar_and_zip_unpack_by_content_flat_or_from_one_folder(model, saved, tmp_path, compression, layout):
    prefix = {"flat": "", "./": "./", "one folder": "my-model/"}[layout]
    files = folder_members(saved, prefix)
    archive = tmp_path / "upload.bin"  # the name says nothing: the first bytes tell
    if compression == "zip":
        zip_archive(archive, files)
    else:
        tar_archive(archive, [file_info(name, content) for name, content in files], compression)
    folder = install(archive)
    assert (folder / "config.json").is_file()
    assert torch.equal(vectors(bpcore.load("served")), vectors(model))


def test_one_top_folder_holding_a_folder_of_its_own_name_unpacks_flat(tmp_path):
    archive = tar_archive(
        tmp_path / "a.tar",
        [
            file_info("m/config.json", b"{}"),
            file_info("m/m/notes.txt", b"n"),
            special_info("m/.m-0", tarfile.DIRTYPE),
        ],
    )
    unpack_archive(archive, tmp_path / "out")
    unpacked = sorted(path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*"))
    assert unpacked == [".m-0", "config.json", "m", "m/notes.txt"]


# -- crafted archives ---------------------------------------------------------------------------------


def _tar(*bad: tuple[tarfile.TarInfo, bytes]):
    def build(path: Path, files: list[tuple[str, bytes]]) -> Path:
        return tar_archive(path, [file_info(name, content) for name, content in files] + list(bad))

    return build


def _zip(*bad: tuple[str, bytes], symlinks: tuple[tuple[str, str], ...] = ()):
    def build(path: Path, files: list[tuple[str, bytes]]) -> Path:
        return zip_archive(path, files + list(bad), symlinks)

    return build


CRAFTED = {
    "tar symlink": (
        _tar(special_info("weights", tarfile.SYMTYPE, "/etc/passwd")),
        "'weights' is a symbolic link",
    ),
    "tar symlink, then a file through it": (
        _tar(special_info("escape", tarfile.SYMTYPE, "/tmp"), file_info("escape/x", b"x")),
        "'escape' is a symbolic link",
    ),
    "tar hardlink": (_tar(special_info("hard", tarfile.LNKTYPE, "/etc/passwd")), "'hard' is a hard link"),
    "tar FIFO": (_tar(special_info("fifo", tarfile.FIFOTYPE)), "'fifo' is a FIFO"),
    "tar device": (_tar(special_info("tty", tarfile.CHRTYPE)), "'tty' is a character device"),
    "tar ../x": (_tar(file_info("../x", b"x")), "'../x' leaves the folder"),
    "tar a/../../x": (_tar(file_info("a/../../x", b"x")), "'a/../../x' leaves the folder"),
    "tar absolute": (_tar(file_info("/tmp/evil", b"x")), "'/tmp/evil' is an absolute path"),
    "tar duplicate": (_tar(file_info("config.json", b"{}")), "'config.json' is given twice"),
    "tar file under a file": (
        _tar(file_info("config.json/x", b"x")),
        "'config.json/x' lies under 'config.json'",
    ),
    "zip symlink": (_zip(symlinks=(("weights", "/etc/passwd"),)), "'weights' is a symbolic link"),
    "zip ../x": (_zip(("../x", b"x")), "'../x' leaves the folder"),
    "zip absolute": (_zip(("/tmp/evil", b"x")), "'/tmp/evil' is an absolute path"),
    "zip windows absolute": (_zip(("C:/evil", b"x")), "'C:/evil' is an absolute path"),
    "zip backslash": (_zip(("..\\x", b"x")), "has a backslash"),
    "zip duplicate": (_zip(("config.json", b"{}")), "'config.json' is given twice"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_archive_is_refused_naming_its_member_and_leaves_nothing(
    case, saved, tmp_path, bpcore_home
):
    build, message = CRAFTED[case]
    archive = build(tmp_path / "upload", folder_members(saved))
    with pytest.raises(bpcore.InputError) as error:
        install(archive)
    assert error.value.field == "archive"
    assert message in str(error.value)
    assert entries(bpcore_home) == []
    assert not (tmp_path / "x").exists() and not Path("/tmp/evil").exists()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_ten_thousand_files_are_refused_at_the_first_one_too_many(kind, tmp_path, bpcore_home):
    files = [(f"f{index:05}", b"") for index in range(10_000)]
    archive = tmp_path / "many"
    if kind == "zip":
        zip_archive(archive, files)
    else:
        tar_archive(archive, [file_info(name, content) for name, content in files])
    with pytest.raises(bpcore.InputError, match="'f01000' is one entry too many") as error:
        install(archive)
    assert error.value.field == "archive"
    assert entries(bpcore_home) == []


@pytest.mark.parametrize("bomb", [zeros_zip, zeros_tar_gz], ids=["zip", "tar.gz"])
def test_a_gib_of_zeros_is_refused_unwritten(bomb, tmp_path, bpcore_home):
    archive = bomb(tmp_path / "bomb")
    assert archive.stat().st_size < 2 * MIB
    with pytest.raises(bpcore.InputError, match="'zeros.bin' takes the files past 200 times") as error:
        install(archive)
    assert error.value.field == "archive"
    assert entries(bpcore_home) == []
    # Below the ratio, the total limit holds.
    with pytest.raises(bpcore.InputError, match=f"'zeros.bin' takes the files past {100 * MIB} bytes"):
        install(archive, limits=ArchiveLimits(max_bytes=100 * MIB, max_ratio=10_000))
    assert entries(bpcore_home) == []


def test_the_bombs_are_real_archives(tmp_path):
    """What the bomb tests refuse would unpack to a GiB with the standard library."""
    with zipfile.ZipFile(zeros_zip(tmp_path / "bomb.zip")) as archive:
        (info,) = archive.infolist()
        assert info.file_size == GIB
        assert archive.open(info).read(MIB) == bytes(MIB)
    with tarfile.open(zeros_tar_gz(tmp_path / "bomb.tar.gz"), "r|gz") as tar:
        member = tar.next()
        assert member is not None and member.size == GIB
        assert tar.extractfile(member).read(MIB) == bytes(MIB)


def test_many_small_members_are_counted_as_they_are_written(tmp_path, bpcore_home):
    # Each member alone is well within the limits; together they are 200 times the archive.
    archive = zip_archive(tmp_path / "bomb.zip", [(f"part-{index:02}", bytes(MIB)) for index in range(60)])
    with pytest.raises(bpcore.InputError, match=r"'part-\d\d' takes the files past 200 times"):
        install(archive)
    assert entries(bpcore_home) == []


def test_a_zip_whose_header_understates_its_size_is_refused(tmp_path, bpcore_home):
    archive = zeros_zip(tmp_path / "liar.zip", size=64 * MIB)
    data = bytearray(archive.read_bytes())
    data[22:26] = (1024).to_bytes(4, "little")  # the local header's uncompressed size
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1024).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(bpcore.InputError, match="'zeros.bin' cannot be read"):
        install(archive)
    assert entries(bpcore_home) == []


def test_a_gib_long_tar_header_is_refused_without_reading_it_into_memory(tmp_path, bpcore_home):
    archive = zeros_tar_gz(tmp_path / "long-name.tar.gz", kind=tarfile.GNUTYPE_LONGNAME)
    tracemalloc.start()
    try:
        with pytest.raises(bpcore.InputError, match="the first tar header is larger than any model's"):
            install(archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MIB
    assert entries(bpcore_home) == []


def test_a_zip_directory_larger_than_the_files_allowed_is_refused_before_it_is_read(tmp_path, bpcore_home):
    archive = zip_archive(tmp_path / "wide.zip", [(f"{index:03}" + "x" * 200, b"") for index in range(200)])
    with pytest.raises(bpcore.InputError, match="the zip directory takes .* more than 10 entries can"):
        install(archive, limits=ArchiveLimits(max_files=10))
    assert entries(bpcore_home) == []


def test_long_paths_and_names_are_refused(saved, tmp_path, bpcore_home):
    long_path = "/".join(["d" * 100] * 11)
    archive = tar_archive(tmp_path / "long.tar", [file_info(long_path, b"x")], "")
    with pytest.raises(bpcore.InputError, match="has a path longer than 1024 bytes"):
        install(archive)
    archive = tar_archive(tmp_path / "long-name.tar", [file_info("n" * 256, b"x")], "")
    with pytest.raises(bpcore.InputError, match="has a name longer than 255 bytes"):
        install(archive)
    assert entries(bpcore_home) == []


def _damaged_tar_gz(path: Path, saved: Path) -> Path:
    data = bytearray(packed(saved, path).read_bytes())
    data[10:40] = b"\xff" * 30  # the first deflate block: reserved block type
    path.write_bytes(bytes(data))
    return path


def _damaged_zip(path: Path, saved: Path) -> Path:
    zip_archive(path, folder_members(saved))
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.safetensors")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


DAMAGED = {
    "empty": lambda path, saved: _written(path, b""),
    "random bytes": lambda path, saved: _written(path, os.urandom(4096)),
    "json": lambda path, saved: _written(path, b'{"not": "an archive"}'),
    "gzip of text": lambda path, saved: _written(path, gzip.compress(b"hello " * 200)),
    "truncated tar.gz": lambda path, saved: _written(path, packed(saved, path).read_bytes()[:-200]),
    "damaged tar.gz": _damaged_tar_gz,
    "damaged zip": _damaged_zip,
    "truncated zip": lambda path, saved: _written(
        path, zip_archive(path, folder_members(saved)).read_bytes()[:500]
    ),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_or_foreign_bytes_are_refused(case, saved, tmp_path, bpcore_home):
    archive = DAMAGED[case](tmp_path / "upload", saved)
    with pytest.raises(bpcore.InputError, match="cannot be read: the archive is damaged") as error:
        install(archive)
    assert error.value.field == "archive"
    assert entries(bpcore_home) == []


def test_an_archive_of_no_saved_model_is_refused(tmp_path, bpcore_home):
    archive = tar_archive(tmp_path / "notes.tar.gz", [file_info("readme.txt", b"hello")])
    with pytest.raises(bpcore.InputError, match="no folder bpcore.save wrote") as error:
        install(archive)
    assert error.value.field == "archive"
    assert entries(bpcore_home) == []


def test_unpacking_into_a_folder_with_files_is_refused_and_leaves_them(tmp_path, saved):
    into = tmp_path / "busy"
    into.mkdir()
    (into / "keep.txt").write_text("keep")
    with pytest.raises(bpcore.InputError, match="not empty"):
        unpack_archive(packed(saved, tmp_path / "a.tar.gz"), into)
    assert (into / "keep.txt").read_text() == "keep"


def test_limits_must_be_positive():
    with pytest.raises(bpcore.InputError) as error:
        ArchiveLimits(max_files=0)
    assert error.value.field == "max_files"


# -- what loading refuses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pickled", [PlainCallableModel, TinyTextModel], ids=["pickle only", "pickle and weights"]
)
def test_a_pickle_is_refused_unless_trusted(pickled, tmp_path, bpcore_home, seeded):
    """UnsafeLoadError (as bpcore.load raises), naming model.bin, even beside weights it would not need."""
    model = pickled()
    folder = bpcore.save(model, path=tmp_path / "pickled", pickle=True)
    archive = packed(folder, tmp_path / "pickled.tar.gz")
    with pytest.raises(bpcore.UnsafeLoadError, match="'model.bin' is a pickle"):
        install(archive)
    assert entries(bpcore_home) == []
    install(archive, trust_pickle=True)
    assert torch.equal(vectors(bpcore.load("served", trust_pickle=True)), vectors(model))


def test_a_class_no_plugin_registers_is_refused(saved, tmp_path, bpcore_home):
    config = json.loads((saved / "config.json").read_text())
    config["class"] = "tiny_models:VocabModel"  # importable, but no plugin registers it: no trust_code
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.UnsafeLoadError, match="no installed plugin registers") as error:
        install(packed(saved, tmp_path / "a.tar.gz"))
    assert str(bpcore_home) not in str(error.value)
    assert entries(bpcore_home) == []


def test_a_folder_that_does_not_load_is_refused(saved, tmp_path, bpcore_home):
    (saved / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(bpcore.ModelLoadError, match="^the upload/model.safetensors is not") as error:
        install(packed(saved, tmp_path / "a.tar.gz"))
    assert str(bpcore_home) not in str(error.value)  # the server's folders are not the client's business
    assert entries(bpcore_home) == []


# -- names --------------------------------------------------------------------------------------------


def test_a_taken_name_is_replaced_only_with_overwrite(model, saved, other, tmp_path, bpcore_home):
    install(packed(saved, tmp_path / "first.tar.gz"))
    other_model, other_folder = other
    second = packed(other_folder, tmp_path / "second.tar.gz")
    with pytest.raises(bpcore.InputError, match="a model named 'served' exists already") as error:
        install(second)
    assert error.value.field == "name"
    staged = staging_folder("served")
    unpack_archive(second, staged)
    with pytest.raises(bpcore.InputError, match="'served' exists already"):
        install_uploaded(staged, "served", overwrite=False, trust_pickle=False)
    assert entries(bpcore_home) == ["served"]
    assert torch.equal(vectors(bpcore.load("served")), vectors(model))
    install(second, overwrite=True)
    assert torch.equal(vectors(bpcore.load("served")), vectors(other_model))
    assert entries(bpcore_home) == ["served"]


def test_a_name_taken_by_something_else_is_never_replaced(saved, tmp_path, bpcore_home):
    (bpcore_home / "precious").mkdir(parents=True)
    (bpcore_home / "precious" / "thesis.txt").write_text("years of work")
    with pytest.raises(
        bpcore.InputError, match="'precious' is taken by something that is not a bpcore model"
    ):
        install(packed(saved, tmp_path / "a.tar.gz"), "precious", overwrite=True)
    assert (bpcore_home / "precious" / "thesis.txt").read_text() == "years of work"
    assert entries(bpcore_home) == ["precious"]


@pytest.mark.parametrize("name", ["Bad Name", "../escape", "ab", ".served"])
def test_invalid_names_are_refused(name, saved, tmp_path, bpcore_home):
    with pytest.raises(bpcore.InputError) as error:
        install(packed(saved, tmp_path / "a.tar.gz"), name)
    assert error.value.field == "name"
    with pytest.raises(bpcore.InputError):
        staging_folder(name)
    assert entries(bpcore_home) == []


def test_only_a_staging_folder_is_installed_or_removed(saved, tmp_path):
    with pytest.raises(bpcore.InputError) as error:
        install_uploaded(saved, "served", overwrite=False, trust_pickle=False)
    assert error.value.field == "staged"
    assert (saved / "config.json").is_file()  # not removed: it is no staging folder


# -- a killed upload ----------------------------------------------------------------------------------

KILLED_UPLOAD = """
import os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import bpcore
from core_helpers import TinyClassesPlugin
from bpcore.archives import install_archive

bpcore.register_plugin(TinyClassesPlugin())
step = {step!r}


def hold():
    print("holding", flush=True)
    sys.stdin.read()  # until the test kills this process


def paths(args):
    return [os.fsdecode(arg) for arg in args if isinstance(arg, (str, bytes, os.PathLike))]


def pause(event, args):
    if step == "unpacking" and event == "open" and any(p.endswith("padding/part-3.bin") for p in paths(args[:1])):
        hold()  # half-way through writing the files
    elif step == "before-swap" and event == "ctypes.dlsym" and args[1] == "renameat2":
        hold()  # checked and loaded, holding the home's lock, about to swap the folders
    elif step == "after-swap" and event == "shutil.rmtree" and any(".staging-" in p for p in paths(args[:1])):
        hold()  # swapped, the old model not yet removed


sys.addaudithook(pause)
install_archive(Path({archive!r}), "served", overwrite=True, trust_pickle=False)
print("finished", flush=True)
"""


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().strip() if ready else "(nothing)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the atomic swap and SIGKILL are Linux's")
@pytest.mark.parametrize("step", ["unpacking", "before-swap", "after-swap"])
def test_a_killed_upload_leaves_a_loadable_model_and_the_next_one_cleans_up(
    step, model, saved, other, tmp_path, bpcore_home
):
    old_archive = packed(saved, tmp_path / "old.tar.gz")
    install(old_archive)
    new, new_folder = other
    padding = [file_info(f"padding/part-{index}.bin", os.urandom(4 * MIB)) for index in range(8)]
    files = [file_info(name, content) for name, content in folder_members(new_folder)]
    large = tar_archive(tmp_path / "large.tar", files + padding, "")
    code = KILLED_UPLOAD.format(tests=str(TESTS_DIR), step=step, archive=str(large))
    env = subprocess_env(BPCORE_LOAD_PLUGINS="", BPCORE_HOME=str(bpcore_home))
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(process, timeout=120)
    finally:
        process.kill()  # SIGKILL: no cleanup of any kind runs
        _, stderr = process.communicate(timeout=60)
    assert line == "holding", stderr
    assert process.returncode == -signal.SIGKILL
    leftovers = [name for name in entries(bpcore_home) if name != "served"]
    assert leftovers and all(name.startswith(".served.staging-") for name in leftovers)
    expected = new if step == "after-swap" else model
    assert torch.equal(vectors(bpcore.load("served")), vectors(expected))
    install(old_archive, overwrite=True)
    assert entries(bpcore_home) == ["served"]
    assert torch.equal(vectors(bpcore.load("served")), vectors(model))
