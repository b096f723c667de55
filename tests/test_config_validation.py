"""PacBayesConfig refuses settings its run cannot use, by name, before any training: batch sizes,
the bounded log-loss's p_min, and an alpha that leaves the prior or the bound set without an example
(library: one ValueError line; command line: exit 2 with one line)."""

import math

import pytest

from genbounds.cli import main
from genbounds.experiments.pac_bayes_runner import PacBayesConfig, prior_split_size

#: The quickest pac-bayes command (MLP of width 8, nothing trained): only validation is under test.
FAST = ["--arch", "mlp", "--widths", "8", "--epochs", "0", "--prior-epochs", "0", "--mc-r", "1", "--mc-m", "0",
        "--no-progress"]


@pytest.mark.parametrize("field,value", [
    ("batch", 0), ("batch", -3), ("batch", 2.5), ("batch", True),
    ("prior_batch", 0), ("prior_batch", -1), ("prior_batch", 8.0),
    ("p_min", 0.0), ("p_min", 1.0), ("p_min", -1e-4), ("p_min", 1.5), ("p_min", math.nan),
])
def test_config_refuses_by_name(field, value):
    with pytest.raises(ValueError, match=rf"^argument '{field}' must be .*, got {value!r}$"):
        PacBayesConfig.flat(**{field: value})


def test_config_accepts_the_edges_that_are_valid():
    cfg = PacBayesConfig.flat(batch=1, prior_batch=1, p_min=0.5)
    assert (cfg.batch, cfg.prior_batch, cfg.p_min) == (1, 1, 0.5)


def test_prior_split_leaves_an_example_on_each_side():
    assert prior_split_size(0.5, 1438) == 719
    assert prior_split_size(0.001, 1438) == 1                  # round(1.438) = 1
    assert prior_split_size(0.999, 1438) == 1437               # round(1436.562) = 1437
    with pytest.raises(ValueError, match=r"^argument 'alpha' .*round\(alpha N\) = 0 .*N = 1438"):
        prior_split_size(0.0003, 1438)                         # round(0.4314) = 0: an empty prior set
    with pytest.raises(ValueError, match=r"^argument 'alpha' .*round\(alpha N\) = 1438 .*N = 1438"):
        prior_split_size(0.9997, 1438)                         # round(1437.57) = 1438: an empty bound set


@pytest.mark.parametrize("flags,needle", [
    (["--batch", "0"], "'batch'"), (["--batch", "-5"], "'batch'"), (["--prior-batch", "0"], "'prior_batch'"),
    (["--p-min", "0"], "'p_min'"), (["--p-min", "1"], "'p_min'"),
    (["--alpha", "0.0001"], "'alpha'"), (["--alpha", "0.9999"], "'alpha'"),
])
def test_cli_refuses_with_one_line_exit_2(tmp_path, capsys, flags, needle):
    assert main(["pac-bayes", "--out", str(tmp_path / "out"), *FAST, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genbounds: error:") and needle in err and "\n" not in err, err
    assert not (tmp_path / "out" / "record.json").exists()
