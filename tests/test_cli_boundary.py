"""The command-line boundary: a bad setting is refused in one line naming the flag as typed (exit 2)
before anything runs or any folder is made, through one mechanism, the settings' own checks
(:func:`genbounds.experiments.config.setting`'s ``check``), which the Python API applies too
(naming the setting); ``bench --out`` is checked before an item runs; ``report`` on records that
hold no bound says so.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from genbounds.cli import main  # noqa: E402
from genbounds.experiments import commands as C  # noqa: E402
from genbounds.experiments.cmi_runner import CMIConfig  # noqa: E402
from genbounds.experiments.compress_runner import CompressConfig  # noqa: E402
from genbounds.experiments.config import SettingError  # noqa: E402
from genbounds.experiments.langevin_runner import LangevinConfig  # noqa: E402
from genbounds.experiments.pac_bayes_runner import PacBayesConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "paper_figures" / "results"


class _Started(BaseException):
    """Raised where a command would start its work: the bad input was not refused first."""


def _stop(*args, **kwargs):
    raise _Started


def _refused(capsys, argv, needle) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("genbounds: error:") and needle in err, err
    return err


@pytest.mark.parametrize("argv, needle", [
    (["pac-bayes", "--mc-delta", "0"], "argument --mc-delta: 'mc_delta' must be in (0, 1), got 0.0"),
    (["pac-bayes", "--delta", "nan"], "argument --delta: 'delta' must be in (0, 1), got nan"),
    (["pac-bayes", "--prior-lr", "0"], "argument --prior-lr: 'prior_lr' must be a finite number > 0, got 0.0"),
    (["pac-bayes", "--grid-b", "inf"], "argument --grid-b:"),
    (["pac-bayes", "--prior-momentum", "1"], "argument --prior-momentum: 'prior_momentum' must be in [0, 1)"),
    (["pac-bayes", "--widths", "8", "0"], "argument --widths: 'widths' must be a whole number >= 1 (every value), "
                                          "got 0"),
    (["pac-bayes", "--binary", "-1"], "argument --binary:"),
    (["pac-bayes", "--binary", *map(str, range(10))], "argument --binary:"),    # every class -> 1: one class
    (["pac-bayes", "--seed", str(2**32)], "argument --seed: 'seed' must be a whole number in [0, 2**32)"),
    (["quickstart", "--seed", "-3"], "argument --seed: 'seed'"),
    (["compress", "--theta0-lr", "nan"], "argument --theta0-lr:"),
    (["compress", "--finetune-lr", "-1"], "argument --finetune-lr:"),
    (["compress", "--theta0-batch", "0"], "argument --theta0-batch:"),
    (["langevin", "--every-eta", "0"], "argument --every-eta:"),
    (["langevin", "--sigmas", "0.1", "inf"], "argument --sigmas: 'sigmas' must be a finite number > 0 (every value), "
                                             "got inf"),
    (["langevin", "--decay", "0"], "argument --decay: 'decay' must be in (0, 1], got 0.0"),
    (["cmi", "--lr", "inf"], "argument --lr: 'lr' must be a finite number > 0, got inf"),
    (["cmi", "--chunk", "-1"], "argument --chunk:"),
])
def test_bad_flag_names_itself_before_anything_runs(capsys, tmp_path, monkeypatch, argv, needle):
    import genbounds.cli as cli
    for name in ("run_pac_bayes", "run_compress", "run_langevin_experiment", "run_cmi"):
        monkeypatch.setattr(cli, name, _stop)
    out = tmp_path / "out"
    _refused(capsys, [*argv, "--out", out, "--no-progress"], needle)
    assert not out.exists()


@pytest.mark.parametrize("make, key", [
    (lambda: PacBayesConfig.flat(lr=float("nan")), "lr"),
    (lambda: PacBayesConfig.flat(mc_m=-1), "mc_m"),
    (lambda: PacBayesConfig.flat(seed=-1), "seed"),
    (lambda: PacBayesConfig.flat(binary=(99,)), "binary"),
    (lambda: PacBayesConfig.flat(mc_delta=1.0), "mc_delta"),
    (lambda: PacBayesConfig.flat(epochs=-1), "epochs"),
    (lambda: PacBayesConfig.flat(prior_epochs=-1), "prior_epochs"),
    (lambda: PacBayesConfig.flat(dp_epochs=0), "dp_epochs"),
    (lambda: PacBayesConfig.flat(grid_c=float("inf")), "grid_c"),
    (lambda: CompressConfig.flat(lr=float("inf")), "lr"),
    (lambda: CompressConfig.flat(theta0_epochs=-1), "theta0_epochs"),
    (lambda: LangevinConfig(every=0), "every"),
    (lambda: LangevinConfig(v_inf=float("nan")), "v_inf"),
    (lambda: CMIConfig(seed=True), "seed"),
])
def test_the_python_api_refuses_by_setting_name(make, key):
    with pytest.raises(SettingError, match=rf"^argument '{key}' must be ") as err:
        make()
    assert err.value.key == key


def test_good_edges_still_pass():
    cfg = PacBayesConfig.flat(binary=(5, 6, 7, 8, 9), seed=2**32 - 1, mc_m=0, momentum=0.0, epochs=0)
    assert cfg.binary == (5, 6, 7, 8, 9) and cfg.seed == 2**32 - 1
    assert LangevinConfig(decay=1.0, rate=0.0).decay == 1.0


def test_a_cross_setting_refusal_names_the_flag_too(capsys, tmp_path):
    _refused(capsys, ["pac-bayes", "--out", tmp_path / "o", "--delta", "0.6", "--mc-delta", "0.5"],
             "argument --mc-delta: 'mc_delta' must be such that delta + mc_delta < 1")
    _refused(capsys, ["langevin", "--out", tmp_path / "o", "--every", "7"], "argument --steps: 'steps'")
    assert not (tmp_path / "o").exists()


def test_bench_checks_out_before_the_first_item(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(C, "run_bench", _stop)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _refused(capsys, ["bench", "--budget-s", "100", "--out", blocker / "bench", "--no-progress"],
             "argument --out: cannot make the folder")
    _refused(capsys, ["bench", "--budget-s", "100", "--out", blocker, "--no-progress"],
             "argument --out: ")
    _refused(capsys, ["bench", "--budget-s", "inf", "--out", tmp_path / "b", "--no-progress"],
             "argument --budget-s: 'budget_s' must be a finite number, got inf")
    assert not (tmp_path / "b").exists()


def test_report_of_search_records_only_says_why(capsys, tmp_path):
    shutil.copy(RESULTS / "search" / "quickstart-round1.json", tmp_path / "s.json")
    err = _refused(capsys, ["report", tmp_path], "no rows to report")
    assert "search" in err


def test_save_under_a_file_and_onto_a_non_record_are_refused(capsys, tmp_path):
    base = ["bound", "pac-bayes", "--emp-risk", "0.1", "--kl", "5", "--n", "1000", "--save"]
    blocker = tmp_path / "a-file"
    blocker.write_text("notes")
    _refused(capsys, [*base, blocker / "r.json"], "argument --save:")
    _refused(capsys, [*base, blocker], "argument --save:")
    assert blocker.read_text() == "notes"
    path = tmp_path / "calc.json"                  # the same command again replaces its own record
    assert main([*base, str(path)]) == 0 and main([*base, str(path)]) == 0


def test_figures_refuses_empty_paths(capsys, tmp_path):
    _refused(capsys, ["figures", "", tmp_path / "out"], "argument results:")
    _refused(capsys, ["figures", RESULTS, ""], "argument out:")
    assert not (tmp_path / "out").exists()
