"""The README's Python examples run as written, and its two set-up commands are the CI's."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _python_blocks():
    """(preceded by a sketch marker?, code) for every ```python block."""
    return [(bool(m.group(1)), m.group(2)) for m in
            re.finditer(r"(<!-- sketch[^>]*-->\n)?```python\n(.*?)```", README, flags=re.S)]


def test_python_examples_run():
    blocks = [code for sketch, code in _python_blocks() if not sketch]
    assert blocks, "no runnable Python example found"
    spaces = []
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)       # noqa: S102 - the README's own code
        spaces.append(namespace)
    # The worked numbers in the examples are what the code computes.
    cert = spaces[0].get("cert")
    assert cert is not None and f"{cert.value:.5f}".startswith("0.1985")
    langevin = [ns for ns in spaces if "theta" in ns]
    assert langevin, "the Langevin example did not run"
    ns = langevin[0]
    value = ns["B"].haghifam_ld_bound(ns["np"].full(ns["T"], ns["beta"] * ns["eta"]), ns["theta"][None],
                                      ns["xi_sq"][None], ns["n"])[0]
    assert 0.9 < value < 1.1


def test_the_two_set_up_commands():
    commands = re.findall(r"```bash\n(pip install[^\n]*)\n```", README)
    assert commands == ['pip install -e ".[experiments]" && genbounds quickstart',
                        'pip install -e ".[test]" && pytest']
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[test]"' in ci and "pytest" in ci
