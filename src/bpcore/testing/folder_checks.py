"""Conformance rules for saved folders: a damaged or hostile folder is refused, never half-loaded.

Each rule saves the candidate's model (:func:`bpcore.save`), damages a copy of the folder one
way at a time, and loads it (:func:`bpcore.load`, then one task call with the kit's sample
inputs). Every attempt must end in a bpcore error, or — for a value the model does not use — in
a model whose answers equal the undamaged one's; never in a foreign exception, a stand-in with
other answers, or a read outside the folder:

- ``saved-paths-inside``: every path-like string of every JSON file in the folder (a value that
  names an entry of the folder, an absolute path, or the value of a key such as ``path``,
  ``file``, ``folder``, ``*_name_or_path``, ``hf_tokenizer_name``) is rewritten to point at a
  decoy folder outside holding a copy of what it named, as an absolute path and as a ``../``
  path (in containers of more than :data:`DATA_CONTAINER` items, such as a vocabulary, the
  first, middle and last items only). Nothing may be opened in the decoy: an audit hook sees
  Python's opens, and the decoy's access times (reset before each attempt) show reads by
  native code.
- ``saved-files-required``: each file is deleted in turn.
- ``saved-numbers-bounded``: each integer field of each JSON file is set to 10**9 (large
  containers of numbers, such as a tokenizer's vocabulary, are sampled). A float field set to
  10**9 may change the answers (it is a rate or a scale, not a size), but still must not raise
  a foreign exception.

Each attempt runs with an address-space cap (:data:`MEMORY_HEADROOM` above what the process
uses, where the platform has one) and a time limit (:data:`ATTEMPT_SECONDS`), so that a size
that slips through is reported instead of exhausting the machine.

Example::

    from bpcore.testing.folder_checks import folder_checks

    for check in folder_checks(candidate):
        check(candidate)          # ConformanceError naming the rule on a failure
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bpcore.errors import BpcoreError, ModelProtocolError
from bpcore.saved_folder import PATH_KEY
from bpcore.testing.rules import Check, ConformanceError, call_inputs, close, prepared, task_for

if TYPE_CHECKING:
    from bpcore.testing.candidate import Candidate

#: The value the numbers rule writes into each numeric field.
HUGE = 10**9
#: Failures a report lists (the rest are counted).
SHOWN = 8
#: Damaged folders tried per rule since the process started (so a test can see a rule did work).
FOLDER_STATS: dict[str, int] = {}
#: Memory an attempt may take beyond what the process already holds (address space, in bytes).
MEMORY_HEADROOM = 3 << 30
#: Seconds an attempt may take before it counts as a hang.
ATTEMPT_SECONDS = 30
#: Containers with more items than this are data (a vocabulary), not settings: sampled, not walked.
DATA_CONTAINER = 64

JsonPath = tuple[Any, ...]


# -- watching for opens outside the folder --------------------------------------------------------

# Audit hooks cannot be removed: one hook, installed once, does nothing unless a watch is on.
_WATCH: dict[str, Any] = {"prefix": None, "seen": [], "installed": False}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    prefix = _WATCH["prefix"]
    if prefix is None or event not in ("open", "os.listdir", "os.scandir"):
        return
    target = args[0] if args else None
    if isinstance(target, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(target))
        if path.startswith(prefix):
            _WATCH["seen"].append(path)


@contextlib.contextmanager
def watching_opens(decoy: Path | None) -> Iterator[list[str]]:
    """The paths opened under ``decoy`` while the block runs (by Python, or natively: access times)."""
    if not _WATCH["installed"]:
        sys.addaudithook(_audit)
        _WATCH["installed"] = True
    seen: list[str] = []
    if decoy is None:
        yield seen
        return
    entries = [decoy, *decoy.rglob("*")]
    for entry in entries:  # access times in the past: any read since then moves them (relatime too)
        os.utime(entry, (0, entry.stat().st_mtime))
    _WATCH["prefix"], _WATCH["seen"] = str(decoy), seen
    try:
        yield seen
    finally:
        _WATCH["prefix"] = None
        seen.extend(str(entry) for entry in entries if entry.stat().st_atime > 0)


# -- limits on one attempt ------------------------------------------------------------------------


class _AttemptTimeout(BaseException):
    """An attempt ran past :data:`ATTEMPT_SECONDS` (a BaseException, so no ``except Exception`` eats it)."""


@contextlib.contextmanager
def _limits() -> Iterator[None]:
    """An address-space cap and a time limit around one attempt, where the platform has them."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_memory_cap())
        stack.enter_context(_time_limit())
        yield


@contextlib.contextmanager
def _memory_cap() -> Iterator[None]:
    try:
        import resource

        status = Path("/proc/self/status").read_text()
        # No VmSize line: None has no .group, an AttributeError, caught below.
        used_kib = int(re.search(r"VmSize:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, AttributeError, ValueError):
        yield  # no cap on this platform
        return
    cap = used_kib * 1024 + MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def _time_limit() -> Iterator[None]:
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(*_: Any) -> None:
        raise _AttemptTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, ATTEMPT_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the saved model and one attempt --------------------------------------------------------------


@attrs.frozen
class _Saved:
    """A saved candidate: its folder, the task and inputs of the probe call, the undamaged answers,
    and the model that was saved (its class is the one ``Candidate.trust_code`` trusts)."""

    candidate: Any
    folder: Path
    work: Path
    task: str
    inputs: dict[str, Any]
    answers: Any
    model: Any


@contextlib.contextmanager
def _saved(candidate: Candidate) -> Iterator[_Saved]:
    import bpcore

    # A task the model answers without finetuning first, when it has one: cheaper to prepare.
    task = next((t for t in candidate.tasks if t not in candidate.needs_finetuning), candidate.tasks[0])
    model = prepared(candidate, task)
    inputs = call_inputs(candidate, task)
    with tempfile.TemporaryDirectory(prefix="bpcore-folder-checks-") as work:
        folder = Path(work) / "saved" / "model"
        bpcore.save(model, name=getattr(model, "name", None) or "conformance-model", path=folder)
        answers = task_for(candidate, task, candidate.load_saved(folder, model))(**inputs)
        yield _Saved(candidate, folder, Path(work), task, inputs, answers, model)


@contextlib.contextmanager
def _copy(saved: _Saved) -> Iterator[Path]:
    """A copy of the saved folder to damage (hard links where possible: writers replace, never edit)."""
    trial = saved.work / "trial" / "model"
    shutil.rmtree(trial.parent, ignore_errors=True)
    trial.parent.mkdir()

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(saved.folder, trial, copy_function=link)
    try:
        yield trial
    finally:
        shutil.rmtree(trial.parent, ignore_errors=True)


def _attempt(saved: _Saved, folder: Path, decoy: Path | None = None, same_answers: bool = True) -> str | None:
    """Load ``folder`` and call it once; None if that went by the rules, else what went wrong."""
    with watching_opens(decoy) as seen:
        problem = _load_and_call(saved, folder, same_answers)
    if seen:
        return f"it opened {seen[0]} outside the saved folder"
    return problem


def _load_and_call(saved: _Saved, folder: Path, same_answers: bool) -> str | None:
    try:
        with _limits():
            try:
                model = saved.candidate.load_saved(folder, saved.model)
            except BpcoreError as error:
                return _allocation_problem(error)  # refused: by the rules, unless it ran out of memory
            answers = task_for(saved.candidate, saved.task, model)(**saved.inputs)
    except _AttemptTimeout:
        return f"loading and one call took over {ATTEMPT_SECONDS} s"
    except ModelProtocolError as error:
        return f"it loaded, then answered against the protocol ({error})"
    except BpcoreError as error:
        return _allocation_problem(error)
    except Exception as error:  # noqa: BLE001 - a foreign exception is what the rule reports
        return f"it loaded, then the first call raised {type(error).__name__}: {str(error)[:200]}"
    if same_answers and not close(answers, saved.answers, tolerance=1e-5):
        return f"it loaded a model with other answers ({answers!r:.80} vs {saved.answers!r:.80})"
    return None


def _allocation_problem(error: BaseException) -> str | None:
    """A bpcore error that hides a failed huge allocation is a missing bound, not a refusal."""
    chain: BaseException | None = error
    while chain is not None:
        text = str(chain)
        if isinstance(chain, MemoryError) or "can't allocate memory" in text or "out of memory" in text:
            return f"it tried to allocate more than {MEMORY_HEADROOM >> 30} GiB ({text[:160]})"
        chain = chain.__cause__ or chain.__context__
    return None


# -- finding what to damage -----------------------------------------------------------------------


def _json_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.json") if path.is_file())


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, data: Any) -> None:
    path.unlink()  # a hard link to the original: replace it, never write through it
    path.write_text(json.dumps(data), encoding="utf-8")


def _set(data: Any, where: JsonPath, value: Any) -> None:
    for key in where[:-1]:
        data = data[key]
    data[where[-1]] = value


def _items(container: Any) -> list[tuple[Any, Any]]:
    if isinstance(container, dict):
        return list(container.items())
    return list(enumerate(container))


def _sampled(items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """A data container's first, middle and last items."""
    if len(items) <= DATA_CONTAINER:
        return items
    return [items[0], items[len(items) // 2], items[-1]]


def _leaves(data: Any, where: JsonPath = (), key: Any = None) -> Iterator[tuple[JsonPath, Any, Any]]:
    """``(path, value, key)`` of each leaf; data containers are sampled."""
    if isinstance(data, (dict, list)):
        for child_key, child in _sampled(_items(data)):
            yield from _leaves(child, (*where, child_key), child_key)
    else:
        yield where, data, key


def _numbers(data: Any) -> Iterator[tuple[JsonPath, Any]]:
    for where, value, _ in _leaves(data):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and where:
            yield where, value


def _names_entry(value: str, base: Path, root: Path) -> Path | None:
    """What ``value`` names inside the saved folder, relative to the JSON file's folder or the saved folder."""
    if value in ("", "."):
        return base
    root = root.resolve()
    for start in (base, root):
        try:
            candidate = (start / value).resolve()
        except (OSError, ValueError):
            return None
        # Only what lies inside is copied to the decoy (a name of "/" must not copy the disk).
        if candidate.exists() and (candidate == root or root in candidate.parents):
            return candidate
    return None


def _path_strings(data: Any, base: Path, root: Path) -> Iterator[tuple[JsonPath, str, Path | None]]:
    """``(path, value, named entry)`` of each path-like string in ``data``."""
    for where, value, key in _leaves(data):
        if not isinstance(value, str) or not where:
            continue
        by_key = isinstance(key, str) and bool(PATH_KEY.search(key))
        named = _names_entry(value, base, root) if len(value) < 512 else None
        looks_like = value.startswith(("/", "~")) or "../" in value
        if by_key or (named is not None and value not in ("", ".")) or looks_like:
            yield where, value, named


# -- the rules ------------------------------------------------------------------------------------


def _report(rule: str, candidate: Candidate, failures: list[str], tried: int) -> None:
    FOLDER_STATS[rule] = FOLDER_STATS.get(rule, 0) + tried
    if failures:
        shown = "\n  ".join(failures[:SHOWN])
        more = f"\n  ... and {len(failures) - SHOWN} more" if len(failures) > SHOWN else ""
        raise ConformanceError(
            rule, f"{candidate.id}: {len(failures)} of {tried} damaged folders:\n  {shown}{more}"
        )


def check_saved_paths_inside(candidate: Candidate) -> None:
    """Path-like strings rewritten to a decoy outside the folder: refused, and nothing opened there."""
    failures, tried = [], 0
    with _saved(candidate) as saved:
        decoy_root = saved.work / "decoy"
        for json_file in _json_files(saved.folder):
            relative = json_file.relative_to(saved.folder)
            for where, value, named in _path_strings(_read(json_file), json_file.parent, saved.folder):
                decoy = decoy_root / f"d{tried}"
                target = decoy / (named.name if named is not None and named.name else "missing")
                decoy.mkdir(parents=True)
                if named is not None and named.is_dir():
                    shutil.copytree(named, target)
                elif named is not None:
                    shutil.copy2(named, target)
                trial_file_dir = saved.work / "trial" / "model" / relative.parent
                for form in (str(target), os.path.relpath(target, trial_file_dir)):
                    tried += 1
                    with _copy(saved) as trial:
                        data = _read(trial / relative)
                        _set(data, where, form)
                        _write(trial / relative, data)
                        problem = _attempt(saved, trial, decoy)
                    if problem:
                        failures.append(f"{relative} {_show(where)} = {form!r} (was {value!r}): {problem}")
                shutil.rmtree(decoy, ignore_errors=True)
    _report("saved-paths-inside", candidate, failures, tried)


def check_saved_files_required(candidate: Candidate) -> None:
    """Each file deleted in turn: refused, or (for a file the model does not read) the same answers."""
    failures, tried = [], 0
    with _saved(candidate) as saved:
        files = sorted(path.relative_to(saved.folder) for path in saved.folder.rglob("*") if path.is_file())
        for relative in files:
            tried += 1
            with _copy(saved) as trial:
                (trial / relative).unlink()
                problem = _attempt(saved, trial)
            if problem:
                failures.append(f"without {relative}: {problem}")
    _report("saved-files-required", candidate, failures, tried)


def check_saved_numbers_bounded(candidate: Candidate) -> None:
    """Each number of each JSON file set to 10**9: refused, or (a value the model does not use) the same answers."""
    failures, tried = [], 0
    with _saved(candidate) as saved:
        for json_file in _json_files(saved.folder):
            relative = json_file.relative_to(saved.folder)
            for where, value in _numbers(_read(json_file)):
                tried += 1
                with _copy(saved) as trial:
                    data = _read(trial / relative)
                    _set(data, where, HUGE)
                    _write(trial / relative, data)
                    problem = _attempt(saved, trial, same_answers=isinstance(value, int))
                if problem:
                    failures.append(f"{relative} {_show(where)} = {HUGE} (was {value!r}): {problem}")
    _report("saved-numbers-bounded", candidate, failures, tried)


def _show(where: JsonPath) -> str:
    return "".join(f"[{key!r}]" for key in where)


RULES: dict[str, Callable[[Candidate], None]] = {
    "saved-paths-inside": check_saved_paths_inside,
    "saved-files-required": check_saved_files_required,
    "saved-numbers-bounded": check_saved_numbers_bounded,
}


def folder_checks(candidate: Candidate) -> Iterator[Check]:
    """The saved-folder rules for ``candidate``, as :class:`~bpcore.testing.checks.Check` objects."""
    for rule, run in RULES.items():
        yield Check(rule, None, run)
