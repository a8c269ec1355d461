"""The README is the entrance: short, its curl session works as written, its links lead somewhere.

The session (the ``sh`` block after ``<!-- readme-session -->``) runs with bash at the
repository's root against a fresh local runtime, with the runtime's URL and key in place of the
README's ``http://127.0.0.1:8000`` and local key: everything else is the README's text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime import ROOT, Runtime, start_runtime

pytestmark = pytest.mark.e2e

KEY = "readme-tenant-key-0123456789"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SESSION_MARKER = "<!-- readme-session -->"
README_URL = "http://127.0.0.1:8000"
README_KEY = "local-dev-key-change-me"
README_VENV_PYTHON = ".venv/bin/python"
MAX_README_LINES = 150
CAT_LABELS = ("tiger cat", "tabby", "Egyptian cat")
FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    rt = start_runtime(KEY)
    yield rt
    rt.stop()


def readme_session() -> str:
    """The README's curl session: the fenced block right after the marker."""
    text = README.read_text()
    assert text.count(SESSION_MARKER) == 1, f"README.md needs exactly one {SESSION_MARKER}"
    after = text.split(SESSION_MARKER, 1)[1].lstrip("\n")
    assert after.startswith("```sh\n"), f"a ```sh block must follow {SESSION_MARKER}"
    return after.removeprefix("```sh\n").split("\n```", 1)[0]


def for_runtime(session: str, rt: Runtime) -> str:
    """The session aimed at ``rt``: its URL and key for the README's, and this test's Python
    when the checkout has no ``.venv`` of its own."""
    assert README_URL in session, f"the session must talk to {README_URL}"
    assert README_KEY in session, f"the session must use the key {README_KEY}"
    script = session.replace(README_URL, rt.url).replace(README_KEY, rt.key)
    if not (ROOT / README_VENV_PYTHON).exists():
        script = script.replace(README_VENV_PYTHON, sys.executable)
    return script


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    plain = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (code blocks left out)."""
    return {slug(h) for h in HEADING.findall(FENCE.sub("", path.read_text()))}


def broken_links(path: Path) -> list[str]:
    """Relative links of a Markdown file whose file, folder or heading does not exist."""
    broken = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, …
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no {linked.relative_to(ROOT)})")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor})")
    return broken


def test_readme_curl_session_classifies_the_cat_as_written(runtime: Runtime) -> None:
    # GIVEN the README's session, aimed at a fresh runtime, and the tools it names
    for tool in ("bash", "curl", "base64"):
        assert shutil.which(tool), f"the session needs {tool}"
    script = for_runtime(readme_session(), runtime)

    # WHEN it runs in bash at the repository's root, stopping at the first failing command
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    print(done.stdout)

    # THEN it succeeds, and every job it made SUCCEEDED with a cat label
    assert done.returncode == 0, f"{done.stderr}\n{runtime.postmortem()}"
    assert "SUCCEEDED" in done.stdout
    assert "FAILED" not in done.stdout
    assert any(label in done.stdout for label in CAT_LABELS), done.stdout


def test_readme_is_at_most_150_lines() -> None:
    lines = README.read_text().splitlines()

    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def test_every_relative_link_in_readme_and_docs_leads_somewhere() -> None:
    # GIVEN the README and every page under docs/
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    assert len(pages) > 1, "docs/ has no pages"

    # WHEN their relative links are followed
    broken = {str(page.relative_to(ROOT)): broken_links(page) for page in pages}

    # THEN each names an existing file or folder, and heading when it names one
    assert {page: links for page, links in broken.items() if links} == {}
