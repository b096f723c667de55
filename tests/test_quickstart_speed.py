"""The quickstart's certificate (a) is opt-in: the config skips it, and ``--mc-m`` asks for it."""

import pytest

from genbounds.cli import build_parser
from genbounds.experiments.config import from_args
from genbounds.experiments.pac_bayes_runner import QUICKSTART, PacBayesConfig


def test_quickstart_skips_certificate_a_by_default():
    assert QUICKSTART.mc_m == 0 and PacBayesConfig().mc_m == 1000
    assert QUICKSTART == PacBayesConfig().replace(mc_m=0)            # every other setting is the defaults'


@pytest.mark.parametrize("argv, m", [(["quickstart"], 0), (["quickstart", "--mc-m", "1000"], 1000),
                                     (["quickstart", "--seed", "2", "--mc-m", "50"], 50)])
def test_quickstart_mc_m_flag(argv, m):
    cfg = from_args(QUICKSTART, build_parser().parse_args(argv))
    assert cfg.mc_m == m and cfg.replace(mc_m=0, seed=0) == QUICKSTART

