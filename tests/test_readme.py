"""The Python examples of the README and of every page in docs/ run as written, the README's two set-up
commands are the CI's, and the README is a front door: short, linking every docs page, with links and
images that resolve, speaking to users (no tracker numbers)."""

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
PAGE_IDS = [p.relative_to(ROOT).as_posix() for p in PAGES]
#: Pages whose examples train models (half a minute or more on 2 cores): run in the integration lane only.
TRAINING_PAGES = {ROOT / "docs" / "certify-your-model.md", ROOT / "docs" / "compression.md"}

#: A ```python block runs unless the line just above it is a sketch marker (placeholders for the
#: reader's own model): <!-- sketch: ... -->.
_PYTHON_BLOCK = re.compile(r"(<!-- sketch[^>]*-->\n)?```python\n(.*?)```", flags=re.S)
#: Markdown links and images: [text](target) / ![alt](target).
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
#: Words that speak of the project's tracker or of how the work was done, not to users.
_TRACKER = re.compile(r"(?i)\bissues?\s*#?\d+|(?<![\w/&])#\d+\b|\blent\b")


def _python_blocks(text: str) -> list[tuple[bool, str]]:
    """(preceded by a sketch marker?, code) for every ```python block."""
    return [(bool(m.group(1)), m.group(2)) for m in _PYTHON_BLOCK.finditer(text)]


@functools.cache
def _namespaces(page: Path) -> tuple[dict, ...]:
    """Run every runnable Python block of ``page`` in its own namespace (once per test session)."""
    spaces = []
    for sketch, code in _python_blocks(page.read_text()):
        if sketch:
            continue
        namespace: dict = {}
        exec(compile(code, page.relative_to(ROOT).as_posix(), "exec"), namespace)  # noqa: S102 - the page's own code
        spaces.append(namespace)
    return tuple(spaces)


def _all_namespaces() -> list[dict]:
    return [ns for page in PAGES if page not in TRAINING_PAGES for ns in _namespaces(page)]


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.integration) if p in TRAINING_PAGES else p
                                  for p in PAGES], ids=PAGE_IDS)
def test_python_examples_run(page):
    blocks = _python_blocks(page.read_text())
    assert len(_namespaces(page)) == sum(not sketch for sketch, _ in blocks)


def test_there_are_runnable_examples():
    assert _namespaces(README), "the README has no runnable Python example"
    assert sum(len(_namespaces(p)) for p in DOCS if p not in TRAINING_PAGES) >= 1, \
        "docs/ has no runnable Python example"


def test_the_worked_numbers_are_what_the_code_computes():
    spaces = _all_namespaces()
    cert = [ns["cert"] for ns in spaces if "cert" in ns]
    assert cert and f"{cert[0].value:.5f}".startswith("0.1985")
    langevin = [ns for ns in spaces if "theta" in ns]
    assert langevin, "the Langevin example did not run"
    ns = langevin[0]
    value = ns["B"].haghifam_ld_bound(ns["np"].full(ns["T"], ns["beta"] * ns["eta"]), ns["theta"][None],
                                      ns["xi_sq"][None], ns["n"])[0]
    assert 0.9 < value < 1.1


def test_the_two_set_up_commands():
    commands = re.findall(r"```bash\n(pip install[^\n]*)\n```", README.read_text())
    assert commands == ['pip install -e ".[experiments]" && genbounds quickstart',
                        'pip install -e ".[test]" && pytest']
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[test]"' in ci and "pytest" in ci


def test_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    linked = {(README.parent / t.split("#")[0]).resolve() for t in _LINK.findall(text)}
    assert DOCS and [p.name for p in DOCS if p.resolve() not in linked] == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_relative_links_and_images_resolve(page):
    missing = [t for t in _LINK.findall(page.read_text())
               if not re.match(r"[a-z]+:|#", t) and not (page.parent / t.split("#")[0]).exists()]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_pages_speak_to_users(page):
    lines = [f"{i}: {line}" for i, line in enumerate(page.read_text().splitlines(), 1) if _TRACKER.search(line)]
    assert lines == []
