"""Malformed inputs for every task, and the ``bad-input`` rule of the conformance kit.

Hypothesis strategies start from a task's valid sample call (or finetune) and break it:
wrong types, None, nesting, mismatched lengths, empty and huge lists, lone surrogates, bad
base64 and data URLs, non-images, decompression bombs, closed images, NaN scores,
single-member groups, and bad keyword values (``return_tensor="no"``, ``top_k=-1``,
``variant=["x"]``, ``validation_split=([0.7], [1.9])``, ``epochs=0``, a ``step`` returning a
float, ...). The rule runs them against a candidate's model through the task classes and
asserts that every outcome is a success or a :class:`bpcore.BpcoreError` (an
:class:`~bpcore.InputError` must name its field) — never a raw ``TypeError``, ``KeyError``,
``IndexError``, ``ValueError`` or ``RuntimeError`` from inside.

Runs are deterministic (``derandomize=True``): the same cases every time. :data:`FUZZ_STATS`
counts the cases run in this process, and the failures among them.
"""

from __future__ import annotations

import base64
import copy
import io
import math
import struct
import tempfile
import warnings
import weakref
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bpcore.contracts import CONTRACTS
from bpcore.errors import BpcoreError, InputError, ModelProtocolError
from bpcore.testing import samples

if TYPE_CHECKING:
    from bpcore.testing.candidate import Candidate

#: Cases per task call and per finetuning variant, for each candidate (see ``Candidate.fuzz_examples``).
CALL_EXAMPLES = 150
FINETUNE_EXAMPLES = 50
#: Malformed inputs run in this process, and how many of them raised something other than a bpcore error.
FUZZ_STATS = {"cases": 0, "failures": 0}

RULE = "bad-input"


def fuzz_count() -> int:
    """How many malformed inputs the ``bad-input`` rule has run in this process."""
    return FUZZ_STATS["cases"]


# -- raw material -------------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` pixels but holds no pixel data (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class _Files:
    """Files the image cases point at, in a temporary folder removed with this object."""

    def __init__(self) -> None:
        from PIL import Image

        self._folder = tempfile.TemporaryDirectory(prefix="bpcore-fuzz-")
        self._cleanup = weakref.finalize(self, self._folder.cleanup)
        folder = self._folder.name
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
        self.png = buffer.getvalue()
        self.paths: dict[str, str] = {"folder": folder, "missing": f"{folder}/missing.png"}
        for name, content in (
            ("image.png", self.png),
            ("truncated.png", self.png[: len(self.png) // 2]),
            ("notes.txt", b"plain text, not an image"),
            ("empty.png", b""),
            ("bomb.png", png_header(20000, 20000)),
        ):
            path = f"{folder}/{name}"
            with open(path, "wb") as file:
                file.write(content)
            self.paths[name] = path


_files: _Files | None = None


def files() -> _Files:
    global _files
    if _files is None:
        _files = _Files()
    return _files


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque object>"


def _raising(*args: Any, **kwargs: Any) -> Any:
    raise ValueError("a user function that fails")


SPECIAL_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    "",
    " ",
    "\t\n",
    "\ud800",
    "text with a lone surrogate \udcff inside",
    "\x00",
    "🙂" * 3,
    "x" * 20_000,
    b"bytes",
    bytearray(b"bytes"),
    {},
    {"text": "a"},
    [],
    [[]],
    [None],
    [[["deep"]]],
    ("a", "tuple"),
    {"a", "set"},
    range(3),
    _Opaque(),
    object,
    print,
]


def _deep(depth: int = 60) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def image_specials() -> list[Any]:
    """Bad (and a few good but unusual) images: every way an image argument can go wrong."""
    from PIL import Image

    paths = files().paths
    closed = Image.new("RGB", (4, 4))
    closed.close()
    return [
        "data:image/png;base64",
        "data:image/png;base64,",
        "data:,",
        "data:image/png,abc",
        "data:image/png;base64,!!!not base64!!!",
        "data:image/png;base64," + _b64(files().png),  # a good data URL
        _b64(b"hello, not an image"),
        _b64(files().png[:40]),
        _b64(png_header(20000, 20000)),
        _b64(png_header(10000, 10000)),
        _b64(png_header(0, 0)),
        "aGVsbG8",  # bad padding
        "not base64 and not a file",
        "/no/such/dir/image.png",
        paths["missing"],
        paths["folder"],
        paths["truncated.png"],
        paths["notes.txt"],
        paths["empty.png"],
        paths["bomb.png"],
        paths["image.png"],  # a good path
        closed,
        Image.new("RGB", (0, 0)),
        Image.new("RGBA", (5, 3)),
        Image.new("P", (3, 3)),
        Image.new("I;16", (3, 3)),
        Image.new("1", (3, 3)),
        Image.new("CMYK", (3, 3)),
        Image.new("F", (3, 3)),
        Image.new("RGB", (1, 1)),
        "x" * 5000,
    ]


# -- strategies ---------------------------------------------------------------------------------


def _st() -> Any:
    try:
        from hypothesis import strategies
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the bad-input rule of bpcore.testing needs hypothesis: pip install hypothesis"
        ) from error
    return strategies


def junk() -> Any:
    """Any value, mostly wrong: specials, odd text (with surrogates), numbers, nested containers."""
    st = _st()
    odd_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
    scalars = st.one_of(
        st.sampled_from(SPECIAL_VALUES),
        odd_text,
        st.integers(min_value=-(2**66), max_value=2**66),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    nested = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=2)
        ),
        max_leaves=6,
    )
    return st.one_of(scalars, nested, st.just(_deep()))


IMAGE_FIELDS = {"image", "images", "imgs1", "imgs2"}


def item_junk(field: str) -> Any:
    """A bad item for ``field`` (an image field also gets bad images)."""
    st = _st()
    if field in IMAGE_FIELDS:
        return st.one_of(st.sampled_from(image_specials()), junk())
    return junk()


#: Curated bad (and a few good) values for keyword arguments of task calls.
CALL_KEYWORDS: dict[str, list[Any]] = {
    "return_tensor": ["no", "yes", "true", 1, 0, None, [True], math.nan, False],
    "top_k": [-1, -(2**70), "3", 3.0, None, True, [1], math.nan, 1, 0, 2**70],
    "multi_label": ["yes", 1, None, [True], True],
    "labels": [
        [],
        [""],
        ["same", "same"],
        "one label",
        [["a"]],
        [["a", "b"]] * 9,
        [None],
        [1, 2],
        [["a", None]],
        ["\ud800"],
        {"a": 1},
        [[]],
        [["a"], "b"],
        ["x" * 10_000, "y"],
        None,
    ],
    "prev_qa": [
        None,
        [],
        "q a",
        [("q", "a")],
        [["q", "a", "extra"]],
        [("q",)],
        ["qa"],
        [[("q", "a")]],
        [[("q", None)]],
        [("\ud800", "a")],
        {"q": "a"},
    ],
    "context": [None, "", "\ud800", ["one"], ["a", "b", "c", "d", "e"], 3, [None], []],
    # Text generation: bad values only, and small good ones (huge good lengths would run long).
    "min_length": [-1, "3", 1.5, math.nan, True, None, 0, 2],
    "max_length": [0, -5, "10", 2.5, math.inf, True, None, 5],
    "temperature": [0, -1.0, math.nan, math.inf, "hot", True, None, 0.7],
    "top_p": [0, 1.5, -0.1, math.nan, "0.9", None, 0.9],
    "repetition_penalty": [math.nan, math.inf, "1", None, 1.2],
    "length_penalty": [math.nan, -math.inf, "1", None, 1.0],
    "num_beams": [0, -1, 2.0, "2", None, 1],
    "num_generations": [0, -3, "2", 1.5, None, 2],
    "do_sample": ["yes", 1, None, [], False],
}

#: The keyword arguments each task's ``__call__`` takes beyond its items.
TASK_KEYWORDS: dict[str, tuple[str, ...]] = {name: c.call_options for name, c in CONTRACTS.items()}
ITEM_ARGUMENTS = {field for c in CONTRACTS.values() for field in c.item_fields}


def _returns(value: Callable[[], Any]) -> Callable[[Any, int], Any]:
    def step(batch: Any, batch_idx: int) -> Any:
        return value()

    step.__name__ = "step"
    return step


def _tensor(*args: Any, **kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        import torch

        return torch.tensor(*args, **kwargs)

    return make


def _bad_optimizer(value: Any) -> Callable[[], Any]:
    return lambda: value


FINETUNE_KEYWORDS: dict[str, list[Any]] = {
    "variant": [["x"], "", "nope", 0, 1.5, b"triplet", ("triplet",), {"single_label"}, "\ud800"],
    "validation_split": [
        ([0.7], [1.9]),
        ([0], [1.9]),
        ([], [0]),
        ([0],),
        ([0], [1], [2]),
        (0.5, 0.5),
        ("0", "1"),
        ([True], [0]),
        ([0], [10**6]),
        ([-1], [0]),
        ([0, 1], "1"),
        ({0, 1}, [2]),
        1.0,
        -0.1,
        math.nan,
        math.inf,
        "0.2",
        None,
        {0: 1},
        True,
        0.5,
    ],
    "epochs": [0, -1, 1.5, "3", True, None, math.nan, [1]],
    "batch_size": [0, -2, "x", 1.5, True, math.nan, 2],
    "optimal_batch_size": ["x", 0, -1, 2.5, True, [4]],
    "early_stopping_epochs": [-1, "1", None, 1.5, True],
    "seed": ["x", -1, 2**40, 1.5, True, math.nan, [0], 7],
    "progress": ["yes", 1, [], math.nan],
    "step": [
        3,
        "loss",
        _returns(lambda: 1.0),
        _returns(lambda: None),
        _returns(_tensor([1.0, 2.0, 3.0])),
        _returns(_tensor(2)),
        _returns(_tensor(math.nan)),
        _raising,
    ],
    "configure_optimizers": [
        3,
        "adam",
        _bad_optimizer(None),
        _bad_optimizer("sgd"),
        _bad_optimizer([]),
        _raising,
    ],
    "train_dataloader": [3, "batches", _Opaque(), {"inputs": 1}, 1.5, [{"inputs": None}], [[1, 2]]],
    "val_dataloader": [3, "batches", _Opaque(), {"inputs": 1}, [None]],
}
TASK_OPTION_VALUES = [0, -1, "x", 1.5, True, math.nan, [8], 8]
#: Finetuning options of each task beyond the common keywords.
TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    name: tuple(c.finetune_options) for name, c in CONTRACTS.items() if c.finetune_options
}


# -- mutations ----------------------------------------------------------------------------------


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    """A copy whose lists can be changed without touching the original (items are shared)."""
    return {key: list(item) if isinstance(item, list) else item for key, item in value.items()}


def _mutate_list(draw: Any, values: Any, field: str) -> Any:
    """``values`` (a list) broken in one way: a bad item, nesting, a wrong length, empty, huge, not a list."""
    st = _st()
    if not isinstance(values, list):
        return draw(item_junk(field))
    kind = draw(
        st.sampled_from(
            ["replace", "replace", "append", "delete", "empty", "nest", "one", "huge", "tuple", "whole"]
        )
    )
    values = list(values)
    if kind == "replace" and values:
        values[draw(st.integers(0, len(values) - 1))] = draw(item_junk(field))
    elif kind == "append":
        values.append(draw(item_junk(field)))
    elif kind == "delete" and values:
        del values[draw(st.integers(0, len(values) - 1))]
    elif kind == "empty":
        values = []
    elif kind == "nest" and values:
        index = draw(st.integers(0, len(values) - 1))
        values[index] = [values[index]]
    elif kind == "one":
        values = values[:1]
    elif kind == "huge" and values:
        values = (values * (64 // len(values) + 1))[:64]
    elif kind == "tuple":
        return tuple(values)
    else:
        return draw(item_junk(field))
    return values


def call_cases(task: str, base: Mapping[str, Any]) -> Any:
    """Keyword arguments for ``task``'s ``__call__``: ``base`` (a valid call) broken once or twice."""
    st = _st()
    keywords = TASK_KEYWORDS[task]

    @st.composite
    def cases(draw: Any) -> dict[str, Any]:
        kwargs = _copy(base)
        for _ in range(draw(st.integers(1, 2))):
            items = [key for key in kwargs if key in ITEM_ARGUMENTS]
            kind = draw(
                st.sampled_from(["item", "item", "keyword", "whole"] if keywords else ["item", "whole"])
            )
            if kind == "keyword":
                key = draw(st.sampled_from(keywords))
                kwargs[key] = draw(st.sampled_from(CALL_KEYWORDS[key]))
            elif kind == "item" and items:
                key = draw(st.sampled_from(items))
                kwargs[key] = _mutate_list(draw, kwargs[key], key)
            else:
                # Any item argument (or labels, prev_qa) replaced outright; huge good lengths are not drawn.
                replaceable = items + [key for key in ("labels", "prev_qa") if key in keywords]
                key = draw(st.sampled_from(replaceable))
                kwargs[key] = draw(item_junk(key))
        return kwargs

    return cases()


SCORES = [math.nan, math.inf, -math.inf, 1.5, -2.0, "0.5", None, True, [1.0]]


def finetune_cases(task: str, params: Mapping[str, Any]) -> Any:
    """``(params, keywords)`` for ``finetune``: a valid one-epoch finetune broken in one or two ways."""
    st = _st()
    keys = ["variant", *FINETUNE_KEYWORDS.keys() - {"variant"}, *TASK_OPTIONS.get(task, ())]
    keys = sorted(set(keys))

    @st.composite
    def cases(draw: Any) -> tuple[Any, dict[str, Any]]:
        data: Any = _copy(params)
        keywords: dict[str, Any] = {}
        for _ in range(draw(st.integers(1, 2))):
            kind = draw(st.sampled_from(["list", "list", "keyword", "keyword", "key", "groups", "params"]))
            if kind == "keyword":
                key = draw(st.sampled_from(keys))
                values = FINETUNE_KEYWORDS.get(key, TASK_OPTION_VALUES)
                keywords[key] = draw(st.sampled_from(values))
            elif not isinstance(data, dict):
                continue
            elif kind == "list" and data:
                key = draw(st.sampled_from(sorted(data)))
                if key == "similarity_scores" and isinstance(data[key], list) and draw(st.booleans()):
                    scores = list(data[key])
                    scores[draw(st.integers(0, len(scores) - 1))] = draw(st.sampled_from(SCORES))
                    data[key] = scores
                else:
                    data[key] = _mutate_list(draw, data[key], key)
            elif kind == "key" and data:
                if draw(st.booleans()):
                    del data[draw(st.sampled_from(sorted(data)))]
                else:
                    data[draw(st.sampled_from(["unknown", "text", "label", "scores", ""]))] = ["x"]
            elif kind == "groups" and isinstance(data.get("groups"), list):
                count = len(data["groups"])
                data["groups"] = draw(
                    st.sampled_from(
                        [
                            list(range(count)),  # single-member groups
                            [0] * count,  # one group
                            [None] * count,
                            [float(i % 2) for i in range(count)],
                            [str(i % 2) for i in range(count - 1)] + ["\ud800"],
                            [[i % 2] for i in range(count)],
                        ]
                    )
                )
            else:
                data = draw(st.one_of(st.just(None), junk(), st.just(list(data.values()))))
        return data, keywords

    return cases()


# -- the rule -----------------------------------------------------------------------------------


def _show(value: Any) -> str:
    import reprlib

    shower = reprlib.Repr()
    shower.maxstring, shower.maxother, shower.maxlist, shower.maxdict, shower.maxlevel = 80, 80, 6, 6, 4
    return shower.repr(value)


def attempt(run: Callable[[], Any], label: str) -> None:
    """Run one malformed input; raise :class:`ConformanceError` unless it succeeds or raises a fitting bpcore error."""
    from bpcore.testing.rules import ConformanceError

    FUZZ_STATS["cases"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run()
    except ModelProtocolError as error:
        FUZZ_STATS["failures"] += 1
        raise ConformanceError(
            RULE, f"{label}: the model broke the protocol on input the core accepted: {error}"
        ) from error
    except InputError as error:
        fields = [field for field, _ in error.problems]
        if not fields or not all(field and field in str(error) for field in fields):
            FUZZ_STATS["failures"] += 1
            raise ConformanceError(
                RULE, f"{label}: {type(error).__name__} does not name its field: {error}"
            ) from error
    except BpcoreError:
        pass
    except Exception as error:
        FUZZ_STATS["failures"] += 1
        raise ConformanceError(
            RULE,
            f"{label} raised {type(error).__name__}: {str(error)[:300]} "
            "(expected a success or a bpcore error naming the field)",
        ) from error


def _explore(cases: Any, examples: int, run_case: Callable[[Any], None]) -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )
    @given(cases)
    def explore(case: Any) -> None:
        run_case(case)

    explore()


def check_bad_input(candidate: Candidate, task: str) -> None:
    """Malformed calls of ``task`` get answers or bpcore errors naming the field."""
    from bpcore.testing.rules import call_inputs, prepared, task_for

    task_object = task_for(candidate, task, prepared(candidate, task))
    examples = (candidate.fuzz_examples or (CALL_EXAMPLES, FINETUNE_EXAMPLES))[0]

    def run_case(kwargs: dict[str, Any]) -> None:
        attempt(lambda: task_object(**kwargs), f"{task}({_show(kwargs)[1:-1]})")

    _explore(call_cases(task, call_inputs(candidate, task)), examples, run_case)


def check_bad_finetune_input(candidate: Candidate, task: str, variant: str) -> None:
    """Malformed finetuning params and keywords get bpcore errors naming the field, before training."""
    from bpcore.testing.rules import task_for, variants_of

    model = candidate.build()
    task_object = task_for(candidate, task, model)
    several = len(variants_of(task)) > 1
    params = candidate.finetune_data.get((task, variant)) or samples.finetune_data(task, variant)
    count = len(next(iter(params.values())))
    optimizer = candidate.optimizer
    base: dict[str, Any] = {
        **({"variant": variant} if several else {}),
        "validation_split": 0.0,
        "epochs": 1,
        "batch_size": min(count, 4),
        "early_stopping_epochs": 0,
        "seed": 0,
        "progress": False,
    }
    if optimizer is not None:
        base["configure_optimizers"] = lambda: optimizer(task_object.model.parameters())
    examples = (candidate.fuzz_examples or (CALL_EXAMPLES, FINETUNE_EXAMPLES))[1]

    def run_case(case: tuple[Any, dict[str, Any]]) -> None:
        data, keywords = case
        arguments = {**base, **keywords}
        label = f"{task}.finetune({_show(data)}, {_show(keywords)[1:-1]})"
        attempt(lambda: task_object.finetune(copy.copy(data), **arguments), label)

    _explore(finetune_cases(task, params), examples, run_case)
