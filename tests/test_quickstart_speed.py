"""The quickstart's certificate (a) is opt-in: the config skips it, and ``--mc-m`` asks for it."""

import json
from pathlib import Path

import pytest

from genbounds.cli import build_parser
from genbounds.experiments.config import from_args
from genbounds.experiments.pac_bayes_runner import QUICKSTART, PacBayesConfig
from genbounds.experiments.results import PacBayesRecord
from genbounds.experiments.summary import pac_bayes_text

RESULTS = Path(__file__).resolve().parents[1] / "paper_figures" / "results"


def test_quickstart_skips_certificate_a_by_default():
    assert QUICKSTART.mc_m == 0 and PacBayesConfig().mc_m == 1000
    assert QUICKSTART == PacBayesConfig().replace(mc_m=0)            # every other setting is the defaults'


@pytest.mark.parametrize("argv, m", [(["quickstart"], 0), (["quickstart", "--mc-m", "1000"], 1000),
                                     (["quickstart", "--seed", "2", "--mc-m", "50"], 50)])
def test_quickstart_mc_m_flag(argv, m):
    cfg = from_args(QUICKSTART, build_parser().parse_args(argv))
    assert cfg.mc_m == m and cfg.replace(mc_m=0, seed=0) == QUICKSTART



def test_summary_says_when_certificate_a_was_not_computed(tmp_path):
    record = PacBayesRecord.from_dict(json.loads((RESULTS / "pac-bayes-quickstart-digits.json").read_text()))
    with_a = PacBayesConfig.from_dict(record.config)
    without = with_a.replace(mc_m=0)
    assert "(a): from 1000 full weight draws" in pac_bayes_text(record, with_a, tmp_path, tmp_path / "f.png", "table")
    text = pac_bayes_text(record, without, tmp_path, tmp_path / "f.png", "table")
    assert "(a): not computed (--mc-m 1000 adds it)." in text and "from 0 full weight draws" not in text
