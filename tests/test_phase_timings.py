"""Per-phase seconds of a PAC-Bayes run: in the record's ``timings`` and in the run's log."""

import json

import pytest

from genbounds.experiments.pac_bayes_runner import PacBayesConfig, phase_keys, phase_table, run_pac_bayes


def test_phase_table_names_every_phase_in_order():
    timings = {"setup_s": 1.04, "prior_s": 20.8, "posterior_quad_s": 80.3, "certificate_b_quad_s": 42.6,
               "certificate_a_quad_s": 37.4, "certificate_excess_quad_s": 40.25, "test_quad_s": 5.0,
               "total_s": 227.4}
    assert phase_table(timings, ("quad",)) == (
        "seconds: setup 1.0, prior 20.8; quad: posterior 80.3, certificate (b) 42.6, certificate (a) 37.4, "
        "combined (excess) 40.2, test errors 5.0; total 227.4")
    resumed = {"setup_s": 1.0, "posterior_seeger_s": 3.0, "total_s": 4.5}       # no prior, seeger had no (a)
    assert phase_table(resumed, ("quad", "seeger")) == "seconds: setup 1.0; seeger: posterior 3.0; total 4.5"
    assert phase_keys("quad") == ("posterior_quad_s", "certificate_b_quad_s", "certificate_a_quad_s",
                                  "certificate_excess_quad_s", "masks_quad_s", "test_quad_s")


@pytest.mark.integration
def test_run_records_and_logs_each_phase(tmp_path):
    cfg = PacBayesConfig.flat(arch="mlp", widths=(16,), prior_epochs=1, epochs=1, mc_r=1, mc_m=2, prior_dropout=0.0)
    lines: list[str] = []
    record = run_pac_bayes(cfg, tmp_path, progress=False, log=lines.append)
    t = record.timings
    phases = ("setup_s", "prior_s", *phase_keys("quad"))
    # the combined certificate comes from certificate (b)'s pass: no phase of its own
    assert set(t) == set(phases) - {"masks_quad_s", "certificate_excess_quad_s"} | {"total_s"}
    assert all(t[k] > 0 for k in t)
    assert sum(t[k] for k in t if k != "total_s") <= t["total_s"]
    res = record.results[0]
    assert t["posterior_quad_s"] == res.train_seconds and t["certificate_b_quad_s"] >= res.certify_seconds
    assert json.loads((tmp_path / "record.json").read_text())["timings"] == pytest.approx(t)
    assert lines[-1] == phase_table(t, ("quad",))
    again: list[str] = []
    resumed = run_pac_bayes(cfg, tmp_path, progress=False, log=again.append)   # everything from checkpoints
    assert set(resumed.timings) == {"setup_s", "total_s"}
