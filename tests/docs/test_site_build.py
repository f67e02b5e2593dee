"""The site builds strictly, holds every page the issue lists, and works in a browser.

The build runs ``mkdocs build --strict`` (what ``nox -s docs`` runs) into a temporary folder.
The browser test serves the built site on loopback and opens it in headless Chromium (Debian's
``chromium``; ``.ci/run`` installs it): the home page and a task page render (screenshots), the
search finds "triplet", and no page logs a console error or an uncaught exception.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from headless_browser import browser, chromium_path

ROOT = Path(__file__).resolve().parents[2]

# About half a minute on two shared cores, with the history plot's finetune.
pytestmark = pytest.mark.slow

#: Pages the issue asks for, as built (``<page>/index.html``).
PAGES = [
    "index.html",
    "getting-started/index.html",
    "finetuning/index.html",
    "saving/index.html",
    "security/index.html",
    "deployment/index.html",
    "cli/index.html",
    "backprop/index.html",
    *(f"plugins/{name}/index.html" for name in ("tutorial", "protocol", "hooks", "testing")),
    *(
        f"reference/{name}/index.html"
        for name in ("bpcore", "models", "training", "testing", "bp_hf", "bp_st", "bp_clip", "bp_effnet")
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site") / "site"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "NO_MKDOCS_2_WARNING": "1",
    }
    # The hook picks the plugins it lists itself; the tests' own settings must not leak in.
    for key in ("BPCORE_LOAD_PLUGINS", "BPCORE_DEFAULTS", "BPCORE_HOME"):
        env.pop(key, None)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    assert "WARNING" not in result.stderr, result.stderr
    return target


def test_every_page_is_built(site):
    from bpcore import TASKS

    missing = [page for page in PAGES if not (site / page).is_file()]
    missing += [f"tasks/{task}" for task in TASKS if not (site / "tasks" / task / "index.html").is_file()]
    assert missing == []


def test_generated_parts_are_current(site):
    """The command line page lists every command; the task pages list models and params keys;
    the history plot is a PNG the build drew; the API reference rendered the docstrings."""
    import argparse

    from bpcore.cli import build_parser

    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in commands.choices.items():
        assert f"bpcore {name}" in cli, name
        for action in parser._actions:
            for option in action.option_strings:
                assert option in cli, (name, option)
    task_page = (site / "tasks" / "text-vectorisation" / "index.html").read_text(encoding="utf-8")
    assert "all-minilm-l6-v2</code> (default)" in task_page
    assert "similarity_scores" in task_page and "triplet" in task_page
    assert "<!-- bpcore:" not in task_page
    png = (site / "img" / "history.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    reference = (site / "reference" / "bpcore" / "index.html").read_text(encoding="utf-8")
    assert 'id="bpcore.TextVectorisation"' in reference and ":class:" not in reference


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def screenshot_ok(path: Path) -> None:
    from PIL import Image

    assert path.stat().st_size > 5_000, path
    with Image.open(path) as image:
        assert image.width >= 800 and image.height >= 600, image.size
        # A rendered page, not a blank one: many colours.
        assert image.convert("RGB").getcolors(maxcolors=16) is None, f"{path} looks blank"


def heading(chromium) -> str:
    """The page's title, without its permalink sign."""
    return chromium.evaluate("document.querySelector('h1').innerText").replace("\u00b6", "").strip()


def test_the_site_in_a_browser(site, served, tmp_path_factory):
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium on this machine (apt-get install chromium; .ci/run installs it)")
    shots = Path(os.environ.get("BPCORE_DOCS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    pages = sorted(path.relative_to(site).parent.as_posix() for path in site.rglob("index.html"))
    errors = {}
    with browser(executable) as chromium:
        chromium.open(f"{served}/")
        assert heading(chromium) == "bpcore"
        screenshot_ok(chromium.screenshot(shots / "home.png"))
        chromium.open(f"{served}/tasks/text-vectorisation/")
        assert heading(chromium) == "Text vectorisation"
        screenshot_ok(chromium.screenshot(shots / "text-vectorisation.png"))

        # Material's search runs in the browser (a web worker over search_index.json); ?q= fills the box.
        chromium.open(f"{served}/?q=triplet")
        found = chromium.wait_for("document.querySelectorAll('.md-search-result__item').length", timeout=60)
        assert found, chromium.evaluate("document.querySelector('.md-search-result__meta').innerText")
        results = chromium.evaluate(
            "Array.from(document.querySelectorAll('.md-search-result__item')).map(e => e.innerText).join('\\n')"
        )
        assert "triplet" in results.lower()
        assert "Text vectorisation" in results

        for page in pages:
            before = len(chromium.errors)
            chromium.open(f"{served}/{'' if page == '.' else page + '/'}")
            if len(chromium.errors) > before:
                errors[page] = chromium.errors[before:]
        if chromium.errors and not errors:  # logged by the screenshots' or the search's pages
            errors["home, text-vectorisation or search"] = chromium.errors
    assert errors == {}
    assert len(pages) >= len(PAGES)
