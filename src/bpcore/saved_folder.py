"""SavedFolder: a saved model folder that hands out only what lies inside it.

A saved folder is untrusted input (see SECURITY.md): every name its files hold may have been
edited to reach elsewhere. :func:`bpcore.load` gives a model class's ``from_saved`` a
:class:`SavedFolder`, and the model asks it for its files by the relative names it wrote:

    @classmethod
    def from_saved(cls, directory, config, device=None):
        weights = directory.file(config["weights"])        # a Path inside the folder, or ModelLoadError
        tokenizer = directory.folder(config["tokenizer"])  # a SavedFolder for a subfolder
        settings = directory.read_json("settings.json")    # parsed, size-bounded JSON

A name is refused (:class:`~bpcore.errors.ModelLoadError`) when it is not a string, is empty,
absolute, holds ``..``, passes through a symlink, or names the wrong kind of entry (a folder
where a file is due, a FIFO or device). A SavedFolder is also ``os.PathLike``, so code that does
``Path(directory)`` keeps working; ``directory / name`` checks ``name`` the same way (without
requiring it to exist).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Collection, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from bpcore.errors import ModelLoadError

#: JSON files a model reads with :meth:`SavedFolder.read_json` are at most this large by default.
MAX_JSON_BYTES = 16 << 20
#: ... and nested at most this deep.
MAX_JSON_DEPTH = 64


class SavedFolder(os.PathLike[str]):
    """A folder of a saved model, resolving only relative names that stay inside it.

    Example::

        folder = SavedFolder("/models/my-model")
        folder.file("model.safetensors")          # PosixPath('/models/my-model/model.safetensors')
        folder.file("../elsewhere/x.json")        # ModelLoadError: ... leaves the saved folder
        folder.folder("transformers").file("config.json")
    """

    def __init__(self, path: str | os.PathLike[str], *, label: str | None = None) -> None:
        root = Path(os.fspath(path))
        try:
            # The folder itself may be reached through a link the user made (a home on another disk);
            # entries inside it may not.
            mode = root.stat().st_mode
        except OSError:
            raise ModelLoadError(f"no saved model folder at {root}") from None
        if not stat.S_ISDIR(mode):
            raise ModelLoadError(f"{root} is not a folder (a saved model is a folder)")
        self._root = root.resolve()
        #: How errors name the folder (a subfolder says "<model folder>/<sub>").
        self.label = label or str(root)

    @classmethod
    def of(cls, directory: str | os.PathLike[str]) -> SavedFolder:
        """``directory`` itself if it is a SavedFolder, else a SavedFolder for that path."""
        return directory if isinstance(directory, SavedFolder) else cls(directory)

    @property
    def path(self) -> Path:
        """The folder's resolved path."""
        return self._root

    def __fspath__(self) -> str:
        return str(self._root)

    def __str__(self) -> str:
        return str(self._root)

    def __repr__(self) -> str:
        return f"SavedFolder({str(self._root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SavedFolder) and other._root == self._root

    def __hash__(self) -> int:
        return hash(self._root)

    def __truediv__(self, name: Any) -> Path:
        """``folder / name``: the path of ``name`` inside the folder (checked, but it need not exist)."""
        return self._inside(name)

    # -- resolving names ------------------------------------------------------------------------
    def file(self, name: Any) -> Path:
        """The path of the regular file ``name`` (relative, inside the folder); else ModelLoadError."""
        path = self._inside(name)
        self._expect(path, name, stat.S_ISREG, "file")
        return path

    def folder(self, name: Any) -> SavedFolder:
        """The subfolder ``name`` (relative, inside the folder) as a SavedFolder; else ModelLoadError."""
        path = self._inside(name)
        self._expect(path, name, stat.S_ISDIR, "folder")
        return SavedFolder(path, label=f"{self.label}/{name}")

    def has_file(self, name: Any) -> bool:
        """Whether ``name`` is a regular file inside the folder (a bad name raises ModelLoadError)."""
        path = self._inside(name)
        try:
            return stat.S_ISREG(path.lstat().st_mode)
        except OSError:
            return False

    def read_json(self, name: Any, max_bytes: int = MAX_JSON_BYTES) -> Any:
        """The parsed JSON file ``name``: at most ``max_bytes`` and :data:`MAX_JSON_DEPTH` deep."""
        path = self.file(name)
        if path.stat().st_size > max_bytes:
            raise ModelLoadError(f"{self.label}: {name} is larger than {max_bytes} bytes")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as error:
            raise ModelLoadError(
                f"{self.label}: {name} is not readable JSON ({type(error).__name__})"
            ) from None
        if json_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise ModelLoadError(f"{self.label}: {name} is nested deeper than {MAX_JSON_DEPTH} levels")
        return data

    def _inside(self, name: Any) -> Path:
        def bad(why: str) -> ModelLoadError:
            return ModelLoadError(f"{self.label}: the saved config names a bad file {name!r}: {why}")

        if not isinstance(name, str) or not name or "\x00" in name:
            raise bad("not a file name")
        if name.startswith(("/", "\\", "~")) or os.path.isabs(name) or PurePosixPath(name).is_absolute():
            raise bad("an absolute path (a saved model names its files relative to its folder)")
        parts = name.replace("\\", "/").split("/")
        if ".." in parts:
            raise bad("it leaves the saved folder")
        if "\\" in name or ":" in parts[0] or any(part in ("", ".") for part in parts):
            raise bad("not a plain relative file name")
        path = self._root
        for part in parts:
            path = path / part
            # Every step is looked at without following links: a symlink could point anywhere.
            try:
                mode = path.lstat().st_mode
            except OSError:
                break  # missing: the caller decides whether that is an error
            if stat.S_ISLNK(mode):
                raise bad("it passes through a symlink, which could lead outside the saved folder")
        return path

    def _expect(self, path: Path, name: str, wanted: Any, kind: str) -> None:
        try:
            mode = path.lstat().st_mode
        except OSError:
            raise ModelLoadError(
                f"{self.label} has no {kind} {name!r}: the saved folder is incomplete"
            ) from None
        if not wanted(mode):
            raise ModelLoadError(f"{self.label}: {name!r} is not a {kind}")


def json_depth(value: Any, limit: int, depth: int = 0) -> int:
    """How deep ``value`` nests (counting stops a level past ``limit``)."""
    if depth > limit:
        return depth
    if isinstance(value, dict):
        return max((json_depth(item, limit, depth + 1) for item in value.values()), default=depth)
    if isinstance(value, list):
        return max((json_depth(item, limit, depth + 1) for item in value), default=depth)
    return depth


def check_int(value: Any, field: str, maximum: int, minimum: int = 1, where: str = "the saved config") -> int:
    """``value`` as an int in ``[minimum, maximum]``; else a ModelLoadError naming ``field`` and the bound.

    For numbers a saved config holds that size memory or work (sizes, lengths, counts).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ModelLoadError(f"{where}: {field} is {value!r}, outside the allowed range {minimum}..{maximum}")
    return value


#: safetensors dtype names of floating-point tensors.
FLOATING_DTYPES = frozenset(
    {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"}
)
#: A safetensors header larger than this is not a weights file (the format's own limit).
MAX_SAFETENSORS_HEADER = 100 << 20


def safetensors_header(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{tensor name: {"dtype": "F32", "shape": [...]}}`` from a safetensors file's header, without its data."""
    try:
        with open(path, "rb") as file:
            size = int.from_bytes(file.read(8), "little")
            total = os.fstat(file.fileno()).st_size
            if not 2 <= size <= min(MAX_SAFETENSORS_HEADER, total - 8):
                raise ValueError("bad header length")
            header = json.loads(file.read(size))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path} is not a safetensors file ({type(error).__name__}: {error})") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path} is not a safetensors file (its header is not an object)")
    return {
        name: entry for name, entry in header.items() if name != "__metadata__" and isinstance(entry, dict)
    }


def check_weights(module: Any, path: str | os.PathLike[str]) -> None:
    """The saved weights at ``path`` fit ``module``: each tensor both hold has one shape and kind of number.

    A floating-point parameter saved as integers (or the reverse) would be converted silently by
    ``load_state_dict`` and answer nonsense; a shape that differs is a config that does not match
    the weights. Either is a ModelLoadError naming the tensor. (Missing and unexpected names are
    left to the loader, which knows about tied weights.)
    """
    header = safetensors_header(path)
    name = Path(path).name
    for key, tensor in module.state_dict().items():
        entry = header.get(key)
        if entry is None:
            continue
        saved_floating = entry.get("dtype") in FLOATING_DTYPES
        if saved_floating != tensor.is_floating_point():
            raise ModelLoadError(
                f"{name}: {key!r} is saved as {entry.get('dtype')}, but the model holds "
                f"{'floating-point' if tensor.is_floating_point() else 'integer'} numbers there: "
                "the weights have the wrong dtype"
            )
        if list(entry.get("shape", [])) != list(tensor.shape):
            raise ModelLoadError(
                f"{name}: {key!r} has shape {entry.get('shape')}, but the saved config builds "
                f"{list(tensor.shape)}: the config does not match the weights"
            )


#: Bounds on the numbers that size a network, under the names model configs commonly give them
#: (transformers, open_clip, timm). Real models stay well below: the largest vocabularies hold
#: ~256k tokens, the widest layers ~50k units, the deepest stacks ~100 layers.
SIZE_BOUNDS: dict[str, int] = {
    **dict.fromkeys(
        (
            "num_hidden_layers",
            "num_layers",
            "num_decoder_layers",
            "num_encoder_layers",
            "n_layer",
            "layers",
            "encoder_layers",
            "decoder_layers",
        ),
        256,
    ),
    **dict.fromkeys(
        (
            "num_attention_heads",
            "num_heads",
            "n_head",
            "heads",
            "num_key_value_heads",
            "encoder_attention_heads",
            "decoder_attention_heads",
        ),
        1024,
    ),
    **dict.fromkeys(
        (
            "hidden_size",
            "d_model",
            "n_embd",
            "width",
            "embed_dim",
            "embedding_size",
            "d_kv",
            "head_dim",
            "head_width",
            "embedding_dimension",
            "word_embedding_dimension",
        ),
        1 << 16,
    ),
    **dict.fromkeys(("intermediate_size", "d_ff", "n_inner", "encoder_ffn_dim", "decoder_ffn_dim"), 1 << 18),
    **dict.fromkeys(("vocab_size", "num_labels"), 1 << 20),
    **dict.fromkeys(("type_vocab_size", "patch_size"), 1 << 12),
    **dict.fromkeys(
        (
            "max_position_embeddings",
            "n_positions",
            "n_ctx",
            "context_length",
            "max_seq_length",
            "relative_attention_max_distance",
            "max_length",
        ),
        1 << 20,
    ),
    **dict.fromkeys(("relative_attention_num_buckets",), 1 << 12),
    **dict.fromkeys(("image_size", "size", "input_size", "img_size", "crop_size"), 4096),
}
#: Any other integer a checked config holds (ids, counts, lengths) is at most this in size.
MAX_INT = 1 << 24


def check_numbers(
    data: Any,
    where: str,
    bounds: Mapping[str, int] | None = None,
    default: int | None = MAX_INT,
    skip: Collection[str] = (),
) -> None:
    """Every integer in the JSON ``data`` within its bound, else a ModelLoadError naming the field.

    An integer under a key of ``bounds`` (default :data:`SIZE_BOUNDS`) is at most that bound
    (lists under the key count too); any other is at most ``default`` in absolute value (None:
    unchecked). Keys in ``skip`` are not looked into. ``where`` names the file in errors.

    Example::

        check_numbers({"hidden_size": 10**9}, "config.json")   # ModelLoadError: config.json: hidden_size ...
    """
    table = SIZE_BOUNDS if bounds is None else bounds

    def visit(value: Any, key: str | None, field: str, depth: int) -> None:
        if depth > MAX_JSON_DEPTH:
            raise ModelLoadError(f"{where} is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            for child_key, child in value.items():
                if child_key not in skip:
                    visit(
                        child, str(child_key), f"{field}.{child_key}" if field else str(child_key), depth + 1
                    )
        elif isinstance(value, list):
            for index, child in enumerate(value):
                visit(child, key, f"{field}[{index}]", depth + 1)
        elif isinstance(value, int) and not isinstance(value, bool):
            bound = table.get(key or "", default)
            if bound is not None and not -bound <= value <= bound:
                raise ModelLoadError(
                    f"{where}: {field} is {value}, beyond the bound of {bound} on what a saved config may ask for"
                )

    visit(data, None, "", 0)


#: Keys of a saved JSON file whose string values a library may resolve as a path or hub id.
PATH_KEY = re.compile(r"(path|file|dir$|folder|(^|_)(tokenizer|model)_name$|checkpoint|repo)", re.IGNORECASE)
#: Keys that only record where a model once came from: libraries load nothing from them.
PROVENANCE_KEYS = frozenset({"_name_or_path", "name_or_path"})


def check_paths(
    folder: SavedFolder, data: Any, where: str, ignore: Collection[str] = PROVENANCE_KEYS
) -> None:
    """Every string under a path-like key of ``data`` (a saved JSON file) names an entry inside ``folder``.

    Empty strings pass, and so do the keys in ``ignore``. A ModelLoadError names the file and key.
    """
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and value and PATH_KEY.search(str(key)) and key not in ignore:
                try:
                    folder / value
                except ModelLoadError as error:
                    raise ModelLoadError(f"{where}: {key}: {error}") from None
            else:
                check_paths(folder, value, where, ignore)
    elif isinstance(data, list):
        for value in data:
            check_paths(folder, value, where, ignore)
