"""Progress reports (genbounds.estimators.progress): a tqdm bar on a terminal, plain periodic lines in a log
file or CI, a text bar on stdout in a Jupyter kernel, nothing with progress=False; the training loops, the
certification passes and the test evaluation report through it."""

import importlib.util
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

from genbounds.estimators import nets, snn
from genbounds.estimators import progress as P
from genbounds.estimators.data import Dataset


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _clock(times):
    """A clock reading ``times`` one after the other (the first read is the bar's start)."""
    it = iter(times)
    return lambda: next(it)


def _fifty_epochs(stream, seconds_per_epoch, enabled=True, leave=False):
    times = [0.0] + [seconds_per_epoch * (e + 1) for e in range(50)] + [seconds_per_epoch * 50] * 2
    with P.Progress(50, "posterior", unit="epoch", enabled=enabled, stream=stream, clock=_clock(times),
                    leave=leave) as bar:
        for e in range(50):
            bar.update(1, obj=f"{0.5 / (e + 1):.4f}", kl=f"{3.0 + e / 10:.1f}")
    return stream.getvalue()


def test_a_line_reads_like_a_log_entry():
    assert P.progress_line("posterior", "epoch", 12, 50, {"obj": "0.0812", "kl": "3.1"}, 14.2) == \
        "posterior: epoch 12/50, obj 0.0812, kl 3.1, 14 s"
    assert P.progress_line("certificate (b)", "repetition", 3, 10, {}, 0.4) == "certificate (b): repetition 3/10, 0 s"


@pytest.mark.parametrize("done, last, since, due", [
    (5, 0, 5.0, True),        # 10 % of 50 more
    (4, 0, 9.9, False),       # neither
    (4, 0, 10.0, True),       # 10 s since the last line
    (50, 48, 8.0, False),     # the end alone is the close's line
    (1, 0, 0.0, False),
])
def test_a_line_is_due_after_ten_percent_or_ten_seconds(done, last, since, due):
    assert P.line_due(done, 50, last, since) is due


def test_a_log_file_gets_plain_lines_every_ten_percent_without_carriage_returns():
    text = _fifty_epochs(io.StringIO(), 1.0)           # 1 s an epoch: 10 % (5 epochs) comes before 10 s
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "posterior: epoch 5/50, obj 0.1000, kl 3.4, 5 s"
    assert [int(x.split()[2].split("/")[0]) for x in lines] == list(range(5, 51, 5))
    assert lines[-1] == "posterior: epoch 50/50, obj 0.0100, kl 7.9, 50 s"


def test_a_slow_loop_in_a_log_file_gets_a_line_every_ten_seconds_and_the_last():
    lines = _fifty_epochs(io.StringIO(), 4.0).splitlines()     # 4 s an epoch: 10 s (3 epochs) before 10 %
    assert [int(x.split()[2].split("/")[0]) for x in lines] == [*range(3, 49, 3), 50]
    assert lines[-1].endswith(", 200 s")


def test_a_terminal_gets_a_tqdm_bar():
    text = _fifty_epochs(_Terminal(), 1.0)
    assert text.startswith("\rposterior:   0%|") and "\n" not in text       # redrawn in place, then cleared
    text = _fifty_epochs(_Terminal(), 1.0, leave=True)                       # the bar as it ends
    assert "posterior: 100%|" in text and "50/50" in text and "obj=0.0100, kl=7.9" in text


def test_progress_false_prints_nothing_anywhere(capsys):
    assert _fifty_epochs(io.StringIO(), 1.0, enabled=False) == ""
    assert _fifty_epochs(_Terminal(), 1.0, enabled=False) == ""
    assert capsys.readouterr() == ("", "")


def test_a_loop_shorter_than_its_delay_stays_silent_in_a_log_file():
    buf = io.StringIO()
    with P.Progress(4, "certificate (b)", unit="repetition", stream=buf, delay=3.0,
                    clock=_clock([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])) as bar:
        for _ in range(4):
            bar.update()
    assert buf.getvalue() == ""
    buf = io.StringIO()
    with P.Progress(4, "certificate (b)", unit="repetition", stream=buf, delay=3.0,
                    clock=_clock([0.0, 2.0, 4.0, 6.0, 8.0, 8.0])) as bar:
        for _ in range(4):
            bar.update()
    assert buf.getvalue().splitlines() == [f"certificate (b): repetition {k}/4, {2 * k} s" for k in (2, 3, 4)]


def test_track_reports_each_item_once_done():
    buf = io.StringIO()
    assert list(P.track(range(3), "draws", unit="draw", stream=buf, clock=_clock([0.0, 1.0, 2.0, 3.0, 3.0]))) == \
        [0, 1, 2]
    assert buf.getvalue().splitlines() == ["draws: draw 1/3, 1 s", "draws: draw 2/3, 2 s", "draws: draw 3/3, 3 s"]


@pytest.fixture
def kernel(monkeypatch):
    """Pretend to run inside a Jupyter kernel (what tqdm and the helper look for)."""
    shell = type("ZMQInteractiveShell", (), {"config": {"IPKernelApp": {}}})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_a_jupyter_kernel_gets_a_text_bar_on_stdout(kernel, capsys):
    assert P.in_notebook()
    with P.Progress(3, "posterior", unit="epoch", leave=True) as bar:
        for _ in range(3):
            bar.update(1, obj="0.5000")
    out, err = capsys.readouterr()
    assert out.startswith("\rposterior:   0%|") and "3/3" in out and "obj=0.5000" in out and err == ""


def test_outside_a_kernel_the_helper_says_so():
    assert not P.in_notebook()


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("ipywidgets") is not None, reason="the warning needs ipywidgets absent")
def test_importing_the_library_in_a_kernel_without_ipywidgets_gives_no_tqdm_warning():
    code = ("import sys, types, warnings\n"
            "shell = type('ZMQInteractiveShell', (), {'config': {'IPKernelApp': {}}})()\n"
            "import IPython, ipykernel.zmqshell\n"
            "IPython.get_ipython = lambda: shell\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            "    import genbounds.estimators.snn\n"
            "print([str(w.message) for w in seen if 'IProgress' in str(w.message)])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------- the library's loops


def _setting():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4, 1, 1)).astype(np.float32)
    data = Dataset(x, (x[:, 0, 0, 0] > 0).astype(np.int32), 2, "toy")
    net = nets.mlp((4, 1, 1), (8,), 2)
    params = net.init(jax.random.PRNGKey(0))
    return net, data, snn.Prior(params, 0.05, data_indices=np.arange(20)), snn.init_posterior(params, 0.05)


def test_training_in_a_log_file_writes_lines_not_a_bar(capsys):
    net, data, prior, post = _setting()
    step = snn.posterior_step(net, prior, optimizer=optax.adam(1e-3), objective_name="quad", n_bound=60)
    snn.train_posterior(step, post, data, key=jax.random.PRNGKey(1), epochs=3, batch_size=40, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert [x.split(",")[0] for x in lines] == ["posterior: epoch 1/3", "posterior: epoch 2/3", "posterior: epoch 3/3"]
    assert all(", obj " in x and ", kl " in x and x.endswith(" s") for x in lines)


def test_the_certification_passes_report_when_they_run_long(monkeypatch, capsys):
    net, data, prior, post = _setting()
    key = jax.random.PRNGKey(2)
    snn.certify(net, post, prior, data, key=key, estimate=snn.PerExampleDraws(3))     # off by default
    snn.certify(net, post, prior, data, key=key, estimate=snn.WeightDraws(16))
    assert capsys.readouterr() == ("", "")
    snn.certify(net, post, prior, data, key=key, estimate=snn.PerExampleDraws(3), progress=True)
    snn.certify(net, post, prior, data, key=key, estimate=snn.WeightDraws(16), progress=True)
    assert capsys.readouterr() == ("", "")          # on, a pass of less than a few seconds stays silent
    monkeypatch.setattr(P, "PASS_DELAY_S", 0.0)     # every pass now counts as long
    cert_b, _ = snn.certify(net, post, prior, data, key=key, estimate=snn.PerExampleDraws(3), progress=True)
    snn.certify(net, post, prior, data, key=key, estimate=snn.WeightDraws(16), progress=True)
    snn.certify_excess(net, post, prior, data, key=key, r=2, progress=True)
    snn.mc_independent(net, post, "gaussian", data, r=2, key=key, progress=True, desc="test error")
    err = capsys.readouterr().err
    assert "\r" not in err
    heads = [x.split(",")[0] for x in err.splitlines()]
    assert "certificate (b): repetition 3/3" in heads
    assert "certificate (a): draw 16/16" in heads
    assert "combined: repetition 2/2" in heads
    assert "test error: repetition 2/2" in heads
    # the bar changes nothing: the same certificate without it
    assert snn.certify(net, post, prior, data, key=key, estimate=snn.PerExampleDraws(3))[0].value == cert_b.value


ROOT = Path(__file__).resolve().parents[1]


def test_every_progress_bar_of_the_package_goes_through_the_helper():
    files = [p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in ("tests", "build")]
    calls = {p.relative_to(ROOT).as_posix() for p in files if re.search(r"\btqdm\(|from tqdm|import tqdm",
                                                                        p.read_text())}
    assert calls == {"estimators/progress.py"}
