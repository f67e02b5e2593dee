"""Every public function, class and method of the API reference has a docstring that names its parameters.

The reference pages (``docs/reference/*.md``) render ``::: target`` blocks with mkdocstrings,
which reads the sources with griffe; this test reads them the same way (the same search paths,
from ``mkdocs.yml``), walks what each block shows — the target's public members, one level into
classes, inherited members where the block asks for them — and asks of each function, method
and class:

- a docstring whose first line is a summary;
- each parameter (``self``/``cls`` and ``*args``/``**kwargs`` aside) named in it, as the codebase
  writes docstrings: ``:param name:`` (the site's ``docstring_style: sphinx``; ``:ivar name:``
  for the fields of an attrs class, whose generated constructor griffe cannot see) or ``name``
  in backticks in the prose. A class's parameters are its constructor's (a parameter a base's
  constructor declares is checked where the reference shows that base).

A method overriding one of a base the reference shows, or implementing the model protocol
(``process_batch``, ``training_step``, ...: ``docs/plugins/protocol.md`` describes what each
receives), is described there. Attributes are described by their class.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

griffe = pytest.importorskip("griffe")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"
BLOCK = re.compile(r"^::: ([\w.]+)\n((?:    .*\n)*)", re.MULTILINE)

#: Model methods the protocol page describes (their parameters are the protocol's).
PROTOCOL_METHODS = (
    "pre_finetuning",
    "process_batch",
    "collate_batch",
    "training_step",
    "save_files",
    "from_saved",
    "extra_config",
    "apply_extra_config",
)

#: Files other work is changing now: their findings are listed, not failed. Empty it once that
#: work has landed (each entry is a path relative to the repository).
NOT_YET_CHECKED = {}


def handler_options() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    plugin = next(p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p)
    return plugin["handlers"]["python"]


def reference_targets() -> list[tuple[str, bool]]:
    """Each ``::: target`` of the reference pages, and whether it shows inherited members."""
    targets = []
    for page in sorted(REFERENCE.glob("*.md")):
        for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
            targets.append((match.group(1), "inherited_members: true" in match.group(2)))
    return targets


def load(paths: list[str], targets: list[tuple[str, bool]]) -> Any:
    loader = griffe.GriffeLoader(search_paths=[str(ROOT / path) for path in paths])
    for package in sorted({target.split(".")[0] for target, _ in targets}):
        loader.load(package)
    loader.resolve_aliases(implicit=True, external=None)
    return loader.modules_collection


def final(obj: Any) -> Any | None:
    try:
        return obj.final_target if obj.is_alias else obj
    except Exception:  # an alias to something outside the loaded packages (torch, ...)
        return None


def shown(obj: Any, inherited: bool, depth: int = 0) -> Iterator[Any]:
    """What a ``::: obj`` block shows (functions, classes, methods), as the site's filters do."""
    if not obj.is_module and not obj.is_class:
        yield obj
        return
    if obj.is_class and depth == 0:
        yield obj
    members = dict(obj.members)
    if inherited and obj.is_class:
        for name, member in obj.inherited_members.items():
            members.setdefault(name, member)
    for name, member in members.items():
        target = final(member)
        if name.startswith("_") or target is None or target.is_module or target.is_attribute:
            continue
        if obj.is_module and not member.is_public:
            continue
        yield target
        if target.is_class and depth == 0:
            yield from shown(target, inherited, depth + 1)


class Reference:
    """What the reference shows, loaded as mkdocstrings loads it."""

    def __init__(self) -> None:
        self.targets = reference_targets()
        self.modules = load(handler_options()["paths"], self.targets)
        self.objects = {
            obj.path: obj
            for target, inherited in self.targets
            for obj in shown(final(self.modules[target]), inherited)
        }

    def shown_bases(self, cls: Any) -> list[Any]:
        """The class's bases that the reference shows, so describes."""
        try:
            return [base for base in cls.mro() if base.path in self.objects]
        except Exception:  # a base outside the loaded packages
            return []

    def described_elsewhere(self, method: Any) -> bool:
        """A method implementing the protocol, or overriding one of a base the reference shows."""
        owner = method.parent
        if owner is None or not owner.is_class:
            return False
        return method.name in PROTOCOL_METHODS or any(
            method.name in base.members for base in self.shown_bases(owner)
        )

    def problems(self, obj: Any) -> list[str]:
        docstring = obj.docstring.value if obj.docstring else ""
        if obj.is_function and self.described_elsewhere(obj):
            return []  # an override: the base describes it (one with a docstring still shows it)
        if not docstring.strip() or not docstring.strip().splitlines()[0].strip():
            return ["no docstring (a summary line first)"]
        if obj.is_function:
            missing = [name for name in parameters(obj) if not named(docstring, name)]
        else:
            missing = self.constructor_problems(obj, docstring)
        return [f"parameters not named in the docstring: {', '.join(missing)}"] if missing else []

    def constructor(self, cls: Any) -> Any | None:
        """The class that defines ``cls``'s constructor (None: no constructor of the packages')."""
        try:
            chain = [cls, *cls.mro()]
        except Exception:
            chain = [cls]
        return next((base for base in chain if "__init__" in base.members), None)

    def place(self, obj: Any) -> str:
        """Where a problem of ``obj`` is fixed: a class's constructor problems in the file that defines it."""
        owner = self.constructor(obj) if obj.is_class else None
        return where(owner["__init__"] if owner is not None and owner is not obj else obj)

    def constructor_problems(self, cls: Any, docstring: str) -> list[str]:
        """The constructor's parameters its docstrings leave out, but those a shown base describes."""
        owner = self.constructor(cls)
        if owner is None or (owner is not cls and owner.path in self.objects):
            return []  # no constructor of ours, or a shown base's, checked there
        init = owner.members["__init__"]
        texts = [
            docstring,
            owner.docstring.value if owner.docstring else "",
            init.docstring.value if init.docstring else "",
        ]
        described = {
            p.name
            for base in self.shown_bases(cls)
            if "__init__" in base.members
            for p in base.members["__init__"].parameters
        }
        return [name for name in parameters(init, described) if not named("\n".join(texts), name)]


def parameters(function: Any, skip: set[str] = frozenset()) -> list[str]:
    return [
        p.name
        for p in function.parameters
        if p.name not in ("self", "cls")
        and p.kind.value not in ("variadic positional", "variadic keyword")
        and p.name not in skip
    ]


def named(docstring: str, name: str) -> bool:
    """``name`` as a ``:param name:`` field (``:ivar name:`` for an attrs class's field), or in backticks."""
    return (
        re.search(rf"(``?\*{{0,2}}|:(?:param|ivar)\s+(?:[\w\[\], |.]+\s+)?){re.escape(name)}\b", docstring)
        is not None
    )


def where(obj: Any) -> str:
    return f"{Path(obj.filepath).relative_to(ROOT)}: {obj.path}"


def findings() -> dict[str, list[str]]:
    """``{"file: object": problems}`` for everything the reference shows."""
    reference = Reference()
    found: dict[str, list[str]] = {}
    for obj in reference.objects.values():
        for problem in reference.problems(obj):
            place = found.setdefault(reference.place(obj), [])
            if problem not in place:  # each task class inherits Task's constructor
                place.append(problem)
    return dict(sorted(found.items()))


def test_the_reference_pages_are_what_the_check_reads():
    targets = {target for target, _ in reference_targets()}
    assert {"bpcore", "bpcore.models", "bpcore.training", "bpcore.testing"} <= targets
    assert {"bp_hf", "bp_st", "bp_clip", "bp_effnet"} <= targets
    assert handler_options()["options"]["docstring_style"] == "sphinx"


def test_every_public_name_in_the_reference_has_a_docstring_naming_its_parameters():
    found = findings()
    failing = {where: why for where, why in found.items() if where.split(":")[0] not in NOT_YET_CHECKED}
    assert not failing, "\n".join(f"{where}: {'; '.join(why)}" for where, why in failing.items())


def test_the_protocol_page_describes_the_protocol_methods():
    protocol = (ROOT / "docs" / "plugins" / "protocol.md").read_text(encoding="utf-8")
    assert all(f"`{name}" in protocol for name in PROTOCOL_METHODS)


def test_the_check_fails_on_what_it_should():
    code = '''
class Shown:
    """A class."""

    def __init__(self, size: int):
        """Told ``size``."""

    def plain(self, first, second=2, *rest, **options):
        """Uses both.

        :param first: the first.
        :param second: the second.
        """

    def silent(self, count):
        pass

    def vague(self, count):
        """Counts."""
'''
    cls = griffe.visit("shown", Path("shown.py"), code)["Shown"]
    reference = Reference()
    assert reference.problems(cls) == []
    assert reference.problems(cls["plain"]) == []
    assert reference.problems(cls["silent"]) == ["no docstring (a summary line first)"]
    assert reference.problems(cls["vague"]) == ["parameters not named in the docstring: count"]
