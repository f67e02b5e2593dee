"""Nox sessions: ``lint`` and ``tests`` (the default, what CI runs), ``docs``, ``demo`` and ``bench``.

    python3 -m pip install nox
    python3 -m nox -s lint tests          # what CI runs (.ci/run)
    python3 -m nox -s tests -- -k save    # arguments after -- go to pytest
    python3 -m nox -R -s tests            # reuse the venv, skip the installs

The core and the plugins are separate distributions in one repository: the root (``bpcore``)
and ``plugins/bp_*``. Every session installs all of them editable, in one pip call, so each
plugin's requirement on ``bpcore`` is met by the checkout and never looked up on an index.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
# The core first, then every plugin distribution of this repository, then the example
# third-party plugin of the plugin author's guide (tested like any plugin).
PACKAGES = (
    ".[serve,ray,evaluate,parquet]",
    "plugins/bp_st",
    "plugins/bp_hf",
    "plugins/bp_clip",
    "plugins/bp_effnet",
    "examples/bp-trigram",
)
# Pinned to releases pip finds on local disk here; asked for before anything that needs torch,
# so that no other torch is resolved.
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
# Pinned: a new ruff release may add rules or change the format; a new mypy may find new errors.
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"
IMPORT_LINTER = "import-linter>=2.1"
# The documentation site (pyproject.toml's `docs` extra): MkDocs Material, mkdocstrings.
DOCS = ("mkdocs-material>=9.5", "mkdocstrings-python>=1.10")
# No network but the package registries: nothing may try to download models.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _editable(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    return [arg for package in packages for arg in ("-e", package)]


def _install_everything(session: nox.Session, *extra: str) -> None:
    """Torch, then the core and every plugin, editable, with their dependencies, plus ``extra``."""
    session.install(*TORCH)
    # One call: pip takes the local root as the only candidate for the plugins' `bpcore`.
    session.install(*_editable(), *extra)
    session.env.update(OFFLINE_ENV)


@nox.session
def tests(session: nox.Session) -> None:
    """Run pytest over tests/, plugins/ and examples/ (arguments after ``--`` go to pytest)."""
    # The plot and tensorboard extras too, so their tests run.
    # openai: the official client, against the server's OpenAI-compatible routes.
    # mkdocs-material and mkdocstrings-python: tests/docs/ builds the site (as `nox -s docs` does).
    _install_everything(
        session,
        "pytest",
        "pytest-xdist>=3.5",
        "hypothesis>=6.100",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
        "openai>=1.0",
        "openvino>=2026.4",  # bp-st's backend="openvino" (the bp-st[openvino] extra)
        *DOCS,
    )
    # One worker per core, at most four (each loads torch); a file's tests stay on one worker, so
    # its module fixtures (a server, a Ray instance, the built site) are built once.
    workers = str(min(os.cpu_count() or 1, 4))
    session.run("pytest", "-n", workers, "--dist", "loadfile", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, lint-imports and mypy; runs all, fails if any fails.

    Names after ``--`` run only those checks (``ruff``, ``format``, ``imports``, ``mypy``):
    ``python3 -m nox -R -s lint -- mypy`` is pre-commit's mypy hook.
    """
    # With the real dependencies: torch, transformers, timm and sentence-transformers ship their
    # types, and mypy checks the plugins against them. Without them every library name is Any:
    # mypy then checks next to nothing in the plugins and calls the ignores they need unused.
    _install_everything(session, RUFF, IMPORT_LINTER, MYPY)
    # Its cache in the session's venv: a fresh clone's work tree gets no .mypy_cache folder.
    mypy_cache = Path(session.virtualenv.location) / "mypy-cache"
    checks = {
        "ruff": ("ruff", "check", "."),
        "format": ("ruff", "format", "--check", "."),
        # --no-cache: leave no .import_linter_cache folder in the work tree.
        "imports": ("lint-imports", "--no-cache"),
        # Files, paths and options: pyproject.toml's [tool.mypy].
        "mypy": ("mypy", "--cache-dir", str(mypy_cache)),
    }
    unknown = sorted(set(session.posargs) - set(checks))
    if unknown:
        session.error(f"unknown check(s) {unknown}; checks are {list(checks)}")
    session.run("ruff", "--version")
    session.run("mypy", "--version")
    failed = []
    for name, command in checks.items():
        if session.posargs and name not in session.posargs:
            continue
        try:
            session.run(*command)
        except CommandFailed:
            failed.append(" ".join(command))
    if failed:
        session.error(f"failed: {'; '.join(failed)}")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/, strictly (a warning fails the build).

    ``python3 -m nox -s docs -- serve`` serves it at http://127.0.0.1:8000 instead, rebuilt on edits.
    """
    # Everything installed, as for the tests: the hook renders tables from the plugins' registrations
    # and draws the finetuning page's plot (matplotlib) from a real run; mkdocstrings reads the sources.
    _install_everything(session, *DOCS, "matplotlib>=3.7")
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", "--strict", *session.posargs[1:])
    else:
        session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run examples/semantic_search.py in the same environment as the tests."""
    script = "examples/semantic_search.py"
    if not (ROOT / script).is_file():
        session.error(f"{script} does not exist")
    _install_everything(session)
    session.run("python", script, *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark under bench/ (each compares bpcore with its peer in one run)."""
    # litserve: serve_throughput.py's peer (LitServe's dynamic batching).
    _install_everything(session, "litserve>=0.2.17")
    for script in sorted((ROOT / "bench").glob("*.py")):
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)
