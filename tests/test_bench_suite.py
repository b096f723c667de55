"""``genbounds bench``: the budget scheduler (skips, limits, resume), the peak table, the verdicts on the
targets and the bench.json / bench.md writers, with fake items; and one smoke run of the real suite."""

import json
import os
import subprocess
import sys
import time

import pytest

from genbounds.cli import main
from genbounds.experiments.benchmarks.suite import (
    CMI,
    ITEMS,
    LANGEVIN,
    MLP_POPULATION,
    PEAKS,
    SUMMARY,
    TARGETS,
    TRAINING,
    Item,
    ItemResult,
    Size,
    Status,
    Target,
    _per_step_cost,
    bench_markdown,
    device_peak,
    diagnose,
    peak_fractions,
    run_suite,
    subprocess_runner,
    summary_rows,
)


class FakeClock:
    """A clock that the fake runner advances by each item's (pretended) duration."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def fake_items(durations: dict[str, float], need: float = 5.0, limit: float = 100.0) -> tuple[Item, ...]:
    return tuple(Item(name, f"fake {name}", lambda ctx: None, {Size.FULL: limit, Size.SMOKE: limit},
                      {Size.FULL: need, Size.SMOKE: need}) for name in durations)


def fake_runner(clock: FakeClock, durations: dict[str, float], calls: list):
    """Pretends each item ran for its duration, or up to the limit it was given (then it timed out)."""
    def run(item: Item, size: Size, limit_s: float) -> ItemResult:
        calls.append((item.name, limit_s))
        took = durations[item.name]
        if took > limit_s:
            clock.t += limit_s
            return ItemResult(item.name, Status.TIMED_OUT, limit_s, limit_s, {"partial": 1.0},
                              reason=f"ran past its limit of {limit_s:.0f} s")
        clock.t += took
        return ItemResult(item.name, Status.DONE, took, limit_s, {"seconds_taken": took},
                          environment={"device_kind": "fake", "device_count": 1, "backend": "cpu",
                                       "jax_version": "0"})
    return run


def test_items_get_what_is_left_and_are_skipped_when_it_is_too_little(tmp_path):
    durations = {"a": 30.0, "b": 50.0, "c": 10.0, "d": 10.0}
    clock, calls = FakeClock(), []
    bench = run_suite(fake_items(durations, need=15.0, limit=40.0), tmp_path, size=Size.FULL, budget_s=100.0,
                      runner=fake_runner(clock, durations, calls), clock=clock, log=lambda m: None)
    # a: its own limit (40 < 100 left); b: 40 (its limit; 70 left), runs past it; c: 30 left >= need 15,
    # limit min(40, 30) = 30; d: 100 - 30 - 40 - 10 = 20 left, limit 20.
    assert calls == [("a", 40.0), ("b", 40.0), ("c", 30.0), ("d", 20.0)]
    items = bench["items"]
    assert [items[k]["status"] for k in "abcd"] == ["done", "timed out", "done", "done"]
    assert items["b"]["figures"] == {"partial": 1.0}          # what a timed-out item measured is kept
    assert bench["used_s"] == pytest.approx(30.0 + 40.0 + 10.0 + 10.0)


def test_an_item_that_would_not_fit_is_skipped_with_the_reason(tmp_path):
    durations = {"a": 90.0, "b": 1.0}
    clock, calls = FakeClock(), []
    bench = run_suite(fake_items(durations, need=20.0, limit=95.0), tmp_path, size=Size.FULL, budget_s=100.0,
                      runner=fake_runner(clock, durations, calls), clock=clock, log=lambda m: None)
    assert [c[0] for c in calls] == ["a"]
    b = bench["items"]["b"]
    assert b["status"] == "skipped" and b["figures"] == {}
    assert "needs about 20 s" in b["reason"] and "10 s of the 100 s budget" in b["reason"]


def test_each_result_is_on_disk_as_soon_as_it_finishes_and_a_rerun_resumes(tmp_path):
    durations = {"a": 10.0, "b": 10.0, "c": 10.0}
    clock, calls = FakeClock(), []
    seen = []

    def runner(item, size, limit_s):
        if item.name == "b":                  # the file already holds a's result when b starts
            seen.append(json.loads((tmp_path / "bench.json").read_text())["items"])
        if item.name == "c":
            raise KeyboardInterrupt           # the run is interrupted during c
        return fake_runner(clock, durations, calls)(item, size, limit_s)

    with pytest.raises(KeyboardInterrupt):
        run_suite(fake_items(durations), tmp_path, size=Size.SMOKE, budget_s=100.0, runner=runner, clock=clock,
                  log=lambda m: None)
    assert list(seen[0]) == ["a"]
    on_disk = json.loads((tmp_path / "bench.json").read_text())
    assert sorted(on_disk["items"]) == ["a", "b"] and (tmp_path / "bench.md").exists()

    calls.clear()
    bench = run_suite(fake_items(durations), tmp_path, size=Size.SMOKE, budget_s=100.0,
                      runner=fake_runner(clock, durations, calls), clock=clock, log=lambda m: None)
    assert [c[0] for c in calls] == ["c"]                     # a and b kept, c run
    assert all(bench["items"][k]["status"] == "done" for k in "abc")

    calls.clear()
    run_suite(fake_items(durations), tmp_path, size=Size.SMOKE, budget_s=100.0, force=True,
              runner=fake_runner(clock, durations, calls), clock=clock, log=lambda m: None)
    assert [c[0] for c in calls] == ["a", "b", "c"]          # --force: everything again


def test_unfinished_items_are_retried_and_other_sizes_refused(tmp_path):
    durations = {"a": 10.0, "b": 500.0}
    clock, calls = FakeClock(), []
    run_suite(fake_items(durations), tmp_path, size=Size.SMOKE, budget_s=1000.0,
              runner=fake_runner(clock, durations, calls), clock=clock, log=lambda m: None)
    calls.clear()
    durations["b"] = 10.0
    bench = run_suite(fake_items(durations), tmp_path, size=Size.SMOKE, budget_s=1000.0,
                      runner=fake_runner(clock, durations, calls), clock=clock, log=lambda m: None)
    assert [c[0] for c in calls] == ["b"] and bench["items"]["b"]["status"] == "done"
    with pytest.raises(ValueError, match="smoke.*--force"):
        run_suite(fake_items(durations), tmp_path, size=Size.FULL, budget_s=1000.0,
                  runner=fake_runner(clock, durations, calls), clock=clock, log=lambda m: None)


def test_budget_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="budget_s"):
        run_suite(fake_items({"a": 1.0}), tmp_path, size=Size.SMOKE, budget_s=0.0, runner=None, log=lambda m: None)


def test_item_result_round_trips_and_is_immutable():
    r = ItemResult("x", Status.TIMED_OUT, 12.5, 30.0, {"a/b_s": 1.5}, notes=("n",), reason="why",
                   environment={"device_kind": "cpu"})
    d = r.to_dict()
    assert d == {"name": "x", "status": "timed out", "seconds": 12.5, "limit_s": 30.0, "figures": {"a/b_s": 1.5},
                 "notes": ["n"], "reason": "why", "environment": {"device_kind": "cpu"}}
    assert ItemResult.from_dict(json.loads(json.dumps(d))) == r
    with pytest.raises(AttributeError):
        r.seconds = 1.0
    with pytest.raises(TypeError):
        r.figures["a/b_s"] = 2.0


@pytest.mark.parametrize("kind, name", [
    ("NVIDIA H200", "NVIDIA H200 SXM"), ("NVIDIA H200 NVL", "NVIDIA H200 NVL"),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"), ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM"), ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB"),
    ("NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe"), ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 40GB")])
def test_peak_table_matches_device_kinds(kind, name):
    assert device_peak(kind).name == name


def test_peak_table_values_are_the_data_sheets_dense_figures():
    h200 = device_peak("NVIDIA H200")
    # H200 SXM data sheet: FP32 67 TFLOPS, TF32 989 and BF16 1,979 TFLOPS *with sparsity* (dense: half), 4.8 TB/s
    assert (h200.fp32_tflops, h200.tf32_tflops, h200.bf16_tflops, h200.hbm_tb_s) == (67.0, 494.7, 989.4, 4.8)
    a100 = device_peak("NVIDIA A100-SXM4-80GB")
    assert (a100.fp32_tflops, a100.tf32_tflops, a100.bf16_tflops, a100.hbm_tb_s) == (19.5, 156.0, 312.0, 2.039)
    for _, peak in PEAKS:
        assert peak.fp32_tflops < peak.tf32_tflops < peak.bf16_tflops and peak.source.startswith("https://")
    assert device_peak("cpu") is None and device_peak("TFRT_CPU_0") is None


def test_peak_fractions():
    h200 = device_peak("NVIDIA H200")
    f = peak_fractions(6.7e12, 0.48e12, h200)
    assert f["fp32_fraction"] == pytest.approx(0.1)
    assert f["bf16_fraction"] == pytest.approx(6.7e12 / 989.4e12)
    assert f["hbm_fraction"] == pytest.approx(0.1)
    assert peak_fractions(1e12, None, h200).keys() == {"fp32_fraction", "tf32_fraction", "bf16_fraction"}
    assert peak_fractions(1e12, 1e9, None) == {}


def test_target_verdicts_say_by_how_much():
    at_most = Target("it", "wall_s", "end to end", "<=", 15.0, "s")
    assert at_most.verdict({"wall_s": 12.0}) == ("met", None)
    assert at_most.verdict({"wall_s": 30.0}) == ("missed", pytest.approx(2.0))
    at_least = Target("it", "rate", "rate", ">=", 1e6, "examples/s")
    assert at_least.verdict({"rate": 2.5e5}) == ("missed", pytest.approx(4.0))
    assert at_least.verdict({"rate": 1e6}) == ("met", None)
    assert at_least.verdict({}) == ("not measured", None)
    # every target names a figure its item produces at full sizes
    full_keys = {t.item for t in TARGETS}
    assert full_keys <= {i.name for i in ITEMS}


def test_diagnosis_is_read_off_the_measured_figures():
    fig = {"p/compile_s": 9.0, "p/steady_s": 1.0}
    assert diagnose(fig, "p/total_s").startswith("compile-bound")
    fig = {"p/compile_s": 9.0, "p/steady_s": 1.0, "p/hbm_fraction": 0.02, "p/fp32_fraction": 0.03}
    assert diagnose(fig, "p/examples_per_s").startswith("launch-bound")   # a rate is steady state: never compile-bound
    fig = {"p/compile_s": 1.0, "p/steady_s": 9.0, "p/hbm_fraction": 0.7, "p/fp32_fraction": 0.05}
    assert diagnose(fig, "p/examples_per_s").startswith("memory-bound")
    fig = {"p/compile_s": 1.0, "p/steady_s": 9.0, "p/hbm_fraction": 0.05, "p/fp32_fraction": 0.8}
    assert diagnose(fig, "p/examples_per_s").startswith("compute-bound")
    fig = {"p/compile_s": 1.0, "p/steady_s": 9.0, "p/hbm_fraction": 0.02, "p/fp32_fraction": 0.03}
    assert diagnose(fig, "p/examples_per_s").startswith("launch-bound")
    assert "not measured" in diagnose({"p/compile_s": 1.0, "p/steady_s": 9.0}, "p/examples_per_s")
    # whole runs: their compile share
    assert diagnose({"xla_compile_s": 8.0, "wall_s": 10.0}, "wall_s").startswith("compile-bound")


def test_markdown_shows_targets_items_and_skips(tmp_path):
    durations = {"a": 60.0, "b": 10.0}
    clock, calls = FakeClock(), []
    items = fake_items(durations, need=50.0)
    bench = run_suite(items, tmp_path, size=Size.FULL, budget_s=100.0, runner=fake_runner(clock, durations, calls),
                      clock=clock, log=lambda m: None, targets=(Target("a", "seconds_taken", "a's time", "<=", 5.0,
                                                                          "s"),))
    md = (tmp_path / "bench.md").read_text()
    assert md == bench_markdown(bench)
    assert "| a's time | 60 s | <= 5 s | missed by 12.00x |" in md
    assert "skipped: needs about 50 s" in md
    assert "fake" in md                                            # the device kind
    assert "| a | seconds_taken | 60 |" in md
    assert "skipped: needs about 50 s, 40 s of the 100 s budget left" in md


@pytest.mark.integration
def test_smoke_run_of_the_whole_suite(tmp_path):
    """``genbounds bench --smoke``: every item runs at tiny sizes on the CPU and produces figures."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "genbounds", "bench", "--smoke", "--out", str(tmp_path / "b"),
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    bench = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert bench["size"] == "smoke" and bench["environment"]["backend"] == "cpu"
    assert set(bench["items"]) == {i.name for i in ITEMS}
    for name, item in bench["items"].items():
        assert item["status"] == "done", (name, item["reason"])
        assert item["figures"], name
    assert "| target |" in proc.stdout
    # 98 s measured on 2 cores; the bound leaves room for a machine shared with other jobs
    assert seconds < 300, seconds


def test_per_step_cost_from_a_compiled_epoch():
    # XLA counts a loop body once: the epoch's figures are one step's
    assert _per_step_cost({"flops": 3.2e6, "bytes accessed": 4.6e6}, 3.4e6, 50) == {"flops": 3.2e6,
                                                                                   "bytes accessed": 4.6e6}
    # an analysis that multiplies by the trip count is divided back
    assert _per_step_cost({"flops": 50 * 3.2e6, "bytes accessed": 50 * 4.6e6}, 3.4e6, 50) == {
        "flops": pytest.approx(3.2e6), "bytes accessed": pytest.approx(4.6e6)}
    assert _per_step_cost({}, 3.4e6, 50) == {}


@pytest.mark.integration          # two subprocesses run bench items
def test_an_item_past_its_limit_is_stopped_and_a_failing_one_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    quick = next(i for i in ITEMS if i.name == "quickstart")
    t0 = time.monotonic()
    r = subprocess_runner(tmp_path)(quick, Size.FULL, 2.0)
    assert r.status == Status.TIMED_OUT and time.monotonic() - t0 < 10
    assert "ran past its limit of 2 s" in r.reason
    pbb = next(i for i in ITEMS if i.name == "pbb_fashion_fcn")
    r = subprocess_runner(tmp_path, data_dir=str(tmp_path / "no-such-folder"))(pbb, Size.FULL, 60.0)
    assert r.status == Status.FAILED and "no-such-folder" in r.reason and "exit status 1" in r.reason
    assert r.environment["backend"] == "cpu"                  # written before the item started


def test_the_command_line_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["bench", "--budget-s", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "genbounds: error: argument '--budget-s' must be > 0, got 0.0"
    (tmp_path / "bench.json").write_text(json.dumps({"size": "smoke", "items": {}}))
    assert main(["bench", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a bench at smoke sizes" in err[0] and "--force" in err[0]


def _full_size_keys() -> set[str]:
    """The figure keys the items produce at full sizes, from their size specs."""
    t = TRAINING[Size.FULL]
    keys = {f"{label}/b{b}/{mode}/{k}" for label, _ in t.archs for b in t.batches for mode in t.modes
            for k in ("examples_per_s", "flops_per_example", "fp32_fraction")}
    keys |= {f"n{n}/{k}" for n in CMI[Size.FULL].n for k in ("runs_per_s", "completed")} | {"protocol_projected_s"}
    keys |= {f"n{n}/{k}" for n in MLP_POPULATION[Size.FULL].n for k in ("population_steps_per_s", "speedup")}
    keys |= {f"n{n}_runs{r}/{k}" for n, r in LANGEVIN[Size.FULL].runs
             for k in ("vmapped_steps_per_s", "sequential_steps_per_s", "ratio")}
    return keys | {"wall_s", "xla_compile_s", "certificate_b", "draws_per_s", "compile_s"}


def test_summary_and_targets_name_figures_the_items_produce():
    produced = _full_size_keys()
    for label, _item, keys, template in SUMMARY:
        assert set(keys) <= produced, label
        assert template.count("{}") == len(keys), label
    for t in TARGETS:
        assert t.key in produced, t.label
    assert {i for _, i, _, _ in SUMMARY} == {i.name for i in ITEMS}


def test_summary_rows_say_what_was_not_measured():
    bench = {"items": {
        "certificate_b": ItemResult("certificate_b", Status.DONE, 1.0, 2.0, {"draws_per_s": 1.5e6,
                                                                             "compile_s": 2.25}).to_dict(),
        "cmi_population": ItemResult("cmi_population", Status.TIMED_OUT, 1.0, 2.0,
                                     {"n1000/runs_per_s": 0.5}).to_dict(),
        "quickstart": ItemResult("quickstart", Status.SKIPPED, 0.0, 0.0, reason="no time").to_dict()}}
    rows = dict(summary_rows(bench))
    assert rows[SUMMARY[5][0]] == "1,500,000 (2.25 s)"
    assert rows[SUMMARY[6][0]] == "0.5 / - (timed out)"
    assert rows[SUMMARY[-1][0]] == "skipped"
    assert rows[SUMMARY[0][0]] == "not run"
