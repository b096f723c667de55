"""A certificate computed in Python, saved as a record (genbounds.experiments.records.save_certificate),
reads back in `genbounds report` and `genbounds figures`; and the same run twice in one process gives
bit-identical certificates."""

import csv
import io
import json
from pathlib import Path

import jax
import numpy as np
import pytest

import genbounds.experiments.pac_bayes_runner as pbm
from genbounds.bounds import Certificate, pac_bayes_certificate
from genbounds.cli import main
from genbounds.estimators import Dataset, certify_network, nets, snn
from genbounds.experiments.records import KINDS, SCHEMA, load_record, load_records, save_certificate
from genbounds.experiments.report import format_number, report_rows
from genbounds.paper_figures import make_all


def _cert() -> Certificate:
    return pac_bayes_certificate("seeger", 0.0412, 37.5, 700, 0.025, mc_samples=7000, mc_delta=0.01, n_prior=700,
                                 details={"objective": "quad", "source": "certify_network"})


def test_a_saved_certificate_is_a_record_of_its_own_kind(tmp_path):
    cert = _cert()
    path = save_certificate(cert, tmp_path / "mine.json", dataset="digits", model="my mlp 64-32-10",
                            prior="data (700 examples)", test_error=0.0375)
    record = load_record(path)
    assert SCHEMA == "genbounds.record/2" and record["schema"] == SCHEMA       # no schema bump
    assert "certificate" in KINDS and record["kind"] == "certificate"
    assert record["config"] == {"dataset": "digits", "model": "my mlp 64-32-10", "prior": "data (700 examples)"}
    assert record["versions"]["genbounds"]
    (entry,) = record["results"]
    assert entry["label"] == "quad" and entry["test_error"] == 0.0375
    assert Certificate.from_dict(entry["certificate"]) == cert


def test_report_rows_of_a_saved_certificate(tmp_path):
    cert = _cert()
    save_certificate(cert, tmp_path / "mine.json", dataset="digits", model="my mlp", prior="data (700 examples)",
                     test_error=0.0375)
    save_certificate(cert, tmp_path / "other.json", dataset="digits", model="my mlp", prior="data (700 examples)",
                     label="my label")
    rows, errors = report_rows(load_records([tmp_path])[0])
    assert errors == []
    mine, other = rows
    assert mine == {"dataset": "digits", "model": "my mlp", "prior": "data (700 examples)", "bound": "quad",
                    "test_error": 0.0375, "n": 700, "emp_risk": 0.0412, "complexity": 37.5 / 700,
                    "certificate": cert.value, "vacuous": False, "kind": "certificate", "source": "mine.json"}
    assert other["bound"] == "my label" and other["test_error"] is None and other["source"] == "other.json"


def test_the_command_line_reports_it_and_figures_reads_it(tmp_path, capsys):
    cert = _cert()
    save_certificate(cert, tmp_path / "mine.json", dataset="digits", model="my mlp", prior="data (700 examples)")
    assert main(["report", str(tmp_path), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row == {"dataset": "digits", "model": "my mlp", "prior": "data (700 examples)", "bound": "quad",
                   "n": "700", "emp_risk": "0.0412", "test_error": "", "complexity": "0.0536",
                   "certificate": format_number(cert.value, 4, upper=True), "kind": "certificate", "vacuous": "no",
                   "source": "mine.json"}
    assert float(row["certificate"]) >= cert.value
    assert err == ""
    _, notes = make_all(tmp_path, tmp_path / "figures")      # read, not skipped (no paper figure draws it)
    assert not [n for n in notes if "mine.json" in n or "unknown kind" in n]


@pytest.mark.parametrize("call, name", [
    (lambda p: save_certificate({"value": 0.1}, p, dataset="d", model="m", prior="p"), "'cert'"),
    (lambda p: save_certificate(_cert(), p, dataset="", model="m", prior="p"), "'dataset'"),
    (lambda p: save_certificate(_cert(), p, dataset="d", model=3, prior="p"), "'model'"),
    (lambda p: save_certificate(_cert(), p, dataset="d", model="m", prior="p", test_error=1.5), "'test_error'"),
    (lambda p: save_certificate(_cert(), p, dataset="d", model="m", prior="p", test_error=float("nan")),
     "'test_error'"),
    (lambda p: save_certificate(_cert(), p, dataset="d", model="m", prior="p", label=""), "'label'"),
])
def test_bad_arguments_are_named(tmp_path, call, name):
    with pytest.raises(ValueError, match=name):
        call(tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_a_malformed_certificate_record_is_one_line_not_a_traceback(tmp_path, capsys):
    path = save_certificate(_cert(), tmp_path / "mine.json", dataset="d", model="m", prior="p")
    record = json.loads(path.read_text())
    del record["results"][0]["certificate"]["kl"]
    path.write_text(json.dumps(record))
    rows, errors = report_rows(load_records([tmp_path])[0])
    assert rows == [] and len(errors) == 1 and "mine.json" in errors[0] and "result entry 0" in errors[0]
    assert main(["report", str(tmp_path)]) == 2


# ----------------------------------------------------------------------------------------- seed-level determinism


def test_certify_twice_in_one_process_is_bit_identical():
    """The certificate of a given posterior (per-example draws, as certify_network's): the same to the bit
    when computed again. (Training and certifying twice, recompiling the training loop: the test below.)"""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6, 1, 1)).astype(np.float32)
    data = Dataset(x, (x[:, 0, 0, 0] + x[:, 1, 0, 0] > 0).astype(np.int32), 2, "toy")
    net = nets.mlp((6, 1, 1), (8,), 2)
    init = net.init(jax.random.PRNGKey(0))
    prior = snn.Prior(init, 0.1, data_indices=np.arange(40))
    post = snn.Posterior(jax.tree_util.tree_map(lambda a: a + 0.05, init), snn.init_posterior(init, 0.08).rho)

    def run():
        cert, mc = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(3), estimate=snn.PerExampleDraws(2))
        return json.dumps(cert.to_dict(), sort_keys=True), np.asarray(mc.per_group)

    (first, draws1), (second, draws2) = run(), run()
    assert first == second                    # every float of the certificate and its details, to the bit
    assert draws1.tobytes() == draws2.tobytes() and json.loads(first)["kl"] > 0


@pytest.mark.integration      # trains twice; the certificate's own determinism is the unit test above
@pytest.mark.filterwarnings("ignore:certificate .* is vacuous:UserWarning")     # a tiny data-free run
def test_certify_network_twice_in_one_process_is_bit_identical():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6, 1, 1)).astype(np.float32)
    train = Dataset(x, (x[:, 0, 0, 0] + x[:, 1, 0, 0] > 0).astype(np.int32), 2, "toy")
    net = nets.mlp((6, 1, 1), (8,), 2)
    init = net.init(jax.random.PRNGKey(0))

    def run():
        cert, post = certify_network(net, init, train, prior_mean=init, data_free=True, key=jax.random.PRNGKey(3),
                                     epochs=3, batch_size=40, r=2, train_mean=True, progress=False)
        return json.dumps(cert.to_dict(), sort_keys=True), [np.asarray(a) for a in jax.tree_util.tree_leaves(post)]

    (first, post1), (second, post2) = run(), run()
    assert first == second                    # every float of the certificate and its details, to the bit
    assert all(a.tobytes() == b.tobytes() for a, b in zip(post1, post2))
    assert json.loads(first)["details"]["training"]["mean_shift"] > 0       # training did move the posterior


def test_the_docs_still_say_float32_training_differs_in_the_last_digits_across_cpus():
    root = Path(__file__).resolve().parents[1]
    for page in ("README.md", "docs/reports.md"):
        text = " ".join((root / page).read_text().split())
        assert "runs in float32, so on another CPU the" in text and "differ in the last digits" in text, page


TINY = pbm.PacBayesConfig.flat(arch="mlp", prior_dropout=0.0, widths=(16,), prior_epochs=2, epochs=3, mc_r=2, mc_m=4,
                               objectives=("quad",))


@pytest.mark.integration
def test_the_pac_bayes_runner_twice_in_one_process_is_bit_identical(tmp_path, capsys):
    """The same config and seed twice (separate output folders, so nothing is resumed), one run with
    progress and one without: the same certificates, test errors and training curve to the bit."""
    a = pbm.run_pac_bayes(TINY, tmp_path / "a", progress=True, log=lambda s: None).results[0]
    err = capsys.readouterr().err
    assert "\r" not in err and "quad: epoch 3/3" in err        # progress lines in a log, not a bar
    b = pbm.run_pac_bayes(TINY, tmp_path / "b", progress=False, log=lambda s: None).results[0]
    assert capsys.readouterr().err == ""

    def same(x):          # everything but the wall times
        d = {k: v for k, v in x.to_dict().items() if k not in ("train_seconds", "certify_seconds")}
        return {**d, **{k: {f: v for f, v in d[k].items() if f != "seconds"} for k in ("mc", "mc_weights")}}
    assert json.dumps(same(a), sort_keys=True) == json.dumps(same(b), sort_keys=True)
    assert a.certificate == b.certificate and a.certificate_weights == b.certificate_weights
