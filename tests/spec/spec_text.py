"""The spec's code examples, read from the spec's text and run as a user runs them.

The spec (``backprop-0.1.1-docs.txt`` beside this file, Backprop 0.1.1's documentation as text)
is the acceptance suite: each test names an example by its section and first line and runs the
text found there, with ``backprop`` read as ``bpcore``. The text keeps the marks of the PDF it
was extracted from, which :func:`spec_lines` undoes and nothing else: a line the PDF wrapped
(``→˓`` starts the rest) is joined again, and page furniture inside an example (running heads,
page numbers, "(continues on next page)") is dropped. Indentation did not survive the
extraction; no top-level example needs it, and the one class definition (3.4) is copied into
its test with its indentation, checked line by line against the spec (:func:`same_lines`).

A few examples cannot run as printed, in Backprop either (a typo, a missing quote): each
correction is an :class:`Erratum` with its reason, applied only where its wrong text occurs.

:func:`run_example` executes an example statement by statement, as a notebook does, and keeps
the value of every expression statement (``qa("Where does Sally live?", ...)``), so a test can
hold it against what the spec shows after it.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC = Path(__file__).with_name("backprop-0.1.1-docs.txt")

#: Where the PDF wrapped a long line: the rest of it starts the next line with this mark.
WRAP_MARK = "→˓"
#: Page furniture the PDF text keeps in the middle of a code block.
PAGE_FURNITURE = re.compile(
    r"""^(
        \(continues\ on\ next\ page\)
      | \(continued\ from\ previous\ page\)
      | Backprop,\ Release\ 0\.1\.1
      | \d+                                   # a page number
      | \d+\ Chapter\ \d+\.\ .*               # a left-hand running foot
      | \d+(\.\d+)+\.\ .*\ \d+                # a right-hand running foot: "2.5. Text Summarisation 11"
    )$""",
    re.VERBOSE,
)


def _joined(previous: str, rest: str) -> str:
    """A wrapped line put back together. The wrap dropped a space at a word break, none inside a word.

    Inside a word: after ``/`` or ``_`` (paths, identifiers), or when the rest starts with the
    quote closing a string (``"easier.`` + ``",``).
    """
    if previous.endswith(("/", "_")) or (rest.startswith('"') and not previous.endswith(",")):
        return previous + rest
    return f"{previous} {rest}"


def spec_lines(text: str | None = None) -> list[str]:
    """The spec's lines with wrapped lines joined, each stripped of the indentation the PDF left."""
    text = SPEC.read_text(encoding="utf-8") if text is None else text
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(WRAP_MARK) and lines:
            lines[-1] = _joined(lines[-1], line[len(WRAP_MARK) :])
        else:
            lines.append(line)
    return lines


@dataclass(frozen=True)
class Erratum:
    """A correction of an example that cannot run as printed (it failed in Backprop too)."""

    wrong: str
    right: str
    why: str


@dataclass(frozen=True)
class Example:
    """A code example of the spec: found by ``start`` (line prefixes, in order: usually the section
    heading, then the example's first line), ending with the line that starts with ``end``.

    ``shows`` are lines the spec prints after a call as its result (not code); they are taken out
    of the code and kept to compare the call's value with.
    """

    id: str
    start: tuple[str, ...]
    end: str
    shows: tuple[str, ...] = ()
    errata: tuple[Erratum, ...] = ()

    def span(self, lines: Sequence[str]) -> range:
        """The indices of the example's first to last line in :func:`spec_lines`."""
        index = 0
        for prefix in self.start:
            index = _find(lines, prefix, index, self.id)
        return range(index, _find(lines, self.end, index, self.id) + 1)

    def lines(self, lines: Sequence[str] | None = None) -> list[str]:
        """The example's lines as the spec prints them (wrapped lines joined), page furniture dropped."""
        lines = spec_lines() if lines is None else lines
        return [lines[index] for index in self.span(lines) if not PAGE_FURNITURE.match(lines[index])]

    def text(self, lines: Sequence[str] | None = None) -> str:
        """The example verbatim (``backprop`` and all): its lines, shown results included."""
        return "\n".join(self.lines(lines)) + "\n"

    def code(self, lines: Sequence[str] | None = None) -> str:
        """The example as bpcore runs it: ``backprop`` read as ``bpcore``, without the results it
        shows, errata applied."""
        body = self.lines(lines)
        for shown in self.shows:
            if shown not in body:
                raise LookupError(f"spec {self.id}: {shown!r} is not a line of the example")
            body.remove(shown)
        code = "\n".join(body) + "\n"
        for erratum in self.errata:
            if erratum.wrong not in code:
                raise LookupError(f"spec {self.id}: erratum {erratum.wrong!r} no longer occurs")
            code = code.replace(erratum.wrong, erratum.right)
        return as_bpcore(code)


def _find(lines: Sequence[str], prefix: str, start: int, example: str) -> int:
    for index in range(start, len(lines)):
        if lines[index].startswith(prefix):
            return index
    raise LookupError(f"spec {example}: no line starting with {prefix!r} after line {start + 1}")


def as_bpcore(code: str) -> str:
    """``backprop`` read as ``bpcore`` (the package; "Backprop" in prose and strings stays)."""
    return re.sub(r"\bbackprop\b", "bpcore", code)


def same_lines(copied: str, example: Example) -> bool:
    """Whether ``copied`` is the example's code (``backprop`` and all, without the results it
    shows) but for indentation and blank lines, which the spec's text lost."""
    code = [line for line in example.lines() if line not in example.shows]
    return [line.strip() for line in copied.splitlines() if line.strip()] == [line for line in code if line]


# -- running ---------------------------------------------------------------------------------


def run_example(
    code: str, namespace: dict[str, Any], name: str = "spec example", values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run ``code`` in ``namespace`` statement by statement; return each expression statement's value.

    The keys are the statements' source (``'tc("I am mad because my product broke.", [...])'``);
    ``values``, if given, is filled as the statements run (so it holds them up to an error).
    """
    tree = ast.parse(code, filename=name)
    values = {} if values is None else values
    for node in tree.body:
        if isinstance(node, ast.Expr):
            source = ast.get_source_segment(code, node) or ""
            expression = ast.Expression(node.value)
            ast.copy_location(expression, node)
            values[source] = eval(compile(expression, name, "eval"), namespace)
        else:
            exec(compile(ast.Module(body=[node], type_ignores=[]), name, "exec"), namespace)
    return values


def value_of(values: Mapping[str, Any], call: str) -> Any:
    """The value of the one expression statement that starts with ``call``."""
    [value] = [value for source, value in values.items() if source.startswith(call)]
    return value


def assert_like_shown(value: Any, shown: str) -> None:
    """``value`` has the shape of the result the spec shows: a text, a ``{label: probability}``
    dict over the same labels, a vector of floats (``...``: of any length), a similarity."""
    expected = ast.literal_eval(shown.removeprefix("> "))  # chapters 6-7 show results after "> "
    if isinstance(expected, str):
        assert isinstance(value, str), f"expected a text like {shown}, got {value!r}"
    elif isinstance(expected, dict):
        assert isinstance(value, dict) and set(value) == set(expected), (
            f"expected keys of {shown}, got {value!r}"
        )
        assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in value.values()), value
    elif isinstance(expected, list) and expected and expected[-1] is Ellipsis:
        assert isinstance(value, list) and len(value) >= len(expected) - 1, (
            f"expected a vector, got {value!r}"
        )
        assert all(isinstance(x, float) for x in value), value[:5]
    elif isinstance(expected, list):
        assert isinstance(value, list) and len(value) == len(expected), (
            f"expected {len(expected)} values, got {value!r}"
        )
        assert all(isinstance(x, float) and -1.0 <= x <= 1.0 for x in value), value
    elif isinstance(expected, float):
        assert isinstance(value, float) and -1.0 <= value <= 1.0, value
    else:  # pragma: no cover - a new kind of shown result
        raise AssertionError(f"no rule for results shown as {shown}")


def moved(trained: Any, fresh: Any) -> bool:
    """Whether finetuning changed weights: some tensor both models have (same name and shape) differs."""
    import torch

    before = fresh.state_dict()
    after = trained.state_dict()
    shared = [key for key in after if key in before and after[key].shape == before[key].shape]
    assert shared, "the models share no weights to compare"
    return any(not torch.equal(after[key], before[key]) for key in shared)


def same_program(first: str, second: str) -> bool:
    """Whether two examples are the same program: the same statements, whatever their layout,
    comments and bare strings (the docstring-like notes some examples carry)."""

    def statements(code: str) -> list[str]:
        tree = ast.parse(code)
        return [
            ast.dump(node)
            for node in tree.body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]

    return statements(first) == statements(second)


@dataclass
class Job:
    """An example to run in a fresh process, then ``probe``: code added after it that leaves JSON
    facts in a variable ``probe`` for the test to assert."""

    id: str
    code: str
    probe: str = ""


def run_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """Run one :class:`Job` (as a dict), returning its output, warnings, probe facts or error."""
    started = time.perf_counter()
    namespace: dict[str, Any] = {"__name__": f"spec_{job['id']}"}
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        error = probe_error = None
        try:
            run_example(
                job["code"], namespace, f"spec {job['id']}", values=namespace.setdefault("values", {})
            )
        except Exception:
            error = traceback.format_exc()
        try:  # also after an error: the probe may look at what the example got to
            exec(compile(job.get("probe") or "", f"probe of spec {job['id']}", "exec"), namespace)
        except Exception:
            probe_error = traceback.format_exc()
    return {
        "stdout": out.getvalue(),
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
        "probe": namespace.get("probe"),
        "error": error,
        "probe_error": probe_error,
        "seconds": round(time.perf_counter() - started, 2),
    }


RUNNER = """
import json, os, sys
os.environ.update(json.loads({env!r}))
os.environ.pop("BPCORE_DEFAULTS", None)
import torch
torch.set_num_threads(1)  # tiny models on a small shared machine run faster on one thread
sys.path.insert(0, {folder!r})
from spec_text import run_job
results = {{job["id"]: run_job(job) for job in json.loads({jobs!r})}}
print("SPEC-RESULTS " + json.dumps(results))
"""


def runner_script(jobs: Sequence[Job], env: Mapping[str, str]) -> str:
    """A Python program that sets ``env`` (``BPCORE_DEFAULTS`` unset), runs ``jobs`` one after
    another and prints their results as JSON."""
    payload = json.dumps([{"id": job.id, "code": job.code, "probe": job.probe} for job in jobs])
    return RUNNER.format(env=json.dumps(dict(env)), folder=str(Path(__file__).parent), jobs=payload)


def parse_results(stdout: str) -> dict[str, dict[str, Any]]:
    [line] = [line for line in stdout.splitlines() if line.startswith("SPEC-RESULTS ")]
    results: dict[str, dict[str, Any]] = json.loads(line[len("SPEC-RESULTS ") :])
    return results
