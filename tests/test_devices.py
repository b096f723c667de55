"""Devices: data-parallel training and certification over 4 forced host devices, a population over
2 processes (jax.distributed, CPU collectives), and populations planned from a memory budget."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

from genbounds.estimators import nets
from genbounds.estimators import supersample as S
from genbounds.estimators.data import Dataset

ROOT = Path(__file__).resolve().parents[1]

#: Subprocesses over forced host devices and processes, and population trainings.
pytestmark = pytest.mark.integration


def _run(script: str, devices: int = 4, timeout: int = 600, env_extra: dict | None = None):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout)


DATA_PARALLEL = textwrap.dedent("""
    import jax, numpy as np, optax
    from genbounds.estimators import nets, snn
    from genbounds.estimators.data import Dataset
    assert jax.local_device_count() == 4, jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 10, 1, 1)).astype(np.float32)
    y = (x[:, :5, 0, 0].sum(1) > 0).astype(np.int32)
    data = Dataset(x, y)
    net = nets.mlp((10, 1, 1), (32,), 2)
    one, four = jax.devices()[:1], jax.devices()
    init = net.init(jax.random.PRNGKey(0))
    prior_idx = np.arange(200)
    means = [snn.train_deterministic(net, init, data.take(prior_idx), key=jax.random.PRNGKey(1), epochs=20,
                                     batch_size=40, optimizer=optax.sgd(0.05, momentum=0.9), progress=False,
                                     devices=d) for d in (one, four)]
    gap = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
              for a, b in zip(jax.tree_util.tree_leaves(means[0]), jax.tree_util.tree_leaves(means[1])))
    assert gap < 1e-4, gap
    prior = snn.Prior(means[0], 0.03, data_indices=prior_idx)
    out = []
    for d in (one, four):
        step = snn.posterior_step(net, prior, optimizer=optax.sgd(0.01, momentum=0.9), objective_name="quad",
                                  n_bound=200)
        state, hist = snn.train_posterior(step, snn.init_posterior(means[0], 0.03), data, key=jax.random.PRNGKey(2),
                                          epochs=5, batch_size=40, progress=False, devices=d)
        out.append((state, hist))
    kl = [h[-1]["kl"] for _, h in out]
    assert abs(kl[0] - kl[1]) <= 1e-3 * max(kl), kl
    post = out[0][0].posterior
    # Certification of one posterior: the counts are exactly the same on one device and on four.
    b1 = snn.mc_independent(net, post, "gaussian", data, r=4, key=jax.random.PRNGKey(3), batch_size=40, devices=one)
    b4 = snn.mc_independent(net, post, "gaussian", data, r=4, key=jax.random.PRNGKey(3), batch_size=40, devices=four)
    assert np.array_equal(b1.per_group, b4.per_group), (b1.per_group, b4.per_group)
    a1 = snn.mc_weight_samples(net, post, "gaussian", data, m=8, key=jax.random.PRNGKey(4), batch_size=40, devices=one)
    a4 = snn.mc_weight_samples(net, post, "gaussian", data, m=8, key=jax.random.PRNGKey(4), batch_size=40, devices=four)
    assert np.array_equal(a1.per_group, a4.per_group)
    errs = [snn.error_rate(net, post.mean, data, 40, devices=d) for d in (one, four)]
    assert errs[0] == errs[1], errs
    c1, _ = snn.certify(net, out[0][0].posterior, prior, data, key=jax.random.PRNGKey(5),
                        estimate=snn.PerExampleDraws(3))
    c4, _ = snn.certify(net, out[1][0].posterior, prior, data, key=jax.random.PRNGKey(5),
                        estimate=snn.PerExampleDraws(3))
    assert abs(c1.value - c4.value) < 5e-3, (c1.value, c4.value)
    print("DATA-PARALLEL-OK", gap, kl, c1.value, c4.value)
""")


def test_training_and_certification_over_four_devices():
    """Posterior training over 4 forced host devices matches one device within float tolerance;
    certification counts of one posterior are identical."""
    out = _run(DATA_PARALLEL)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "DATA-PARALLEL-OK" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_population_over_two_processes_equals_one_process(tmp_path):
    """`genbounds cmi` on 2 processes x 2 devices (jax.distributed on localhost, gloo collectives)
    writes the same record as one process, and only process 0 writes."""
    argv = ["cmi", "--n", "6", "12", "--k1", "2", "--k2", "4", "--epochs", "30", "--no-progress", "--format", "json"]
    single = tmp_path / "single"
    one = _run(f"from genbounds.cli import main; raise SystemExit(main({argv + ['--out', str(single)]!r}))",
               devices=1)
    assert one.returncode == 0, one.stderr[-3000:]
    multi = tmp_path / "multi"
    first_error = ""
    for _ in range(2):              # a second launch on a new port if the first could not start
        port = _free_port()         # (another program may take the free port before process 0 binds it)
        procs = []
        for pid in (0, 1):
            cmd = argv + ["--out", str(multi), "--coordinator", f"localhost:{port}", "--num-processes", "2",
                          "--process-id", str(pid)]
            env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
            procs.append(subprocess.Popen([sys.executable, "-m", "genbounds", *cmd], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, env=env))
        outs = [p.communicate(timeout=600) for p in procs]
        if all(p.returncode == 0 for p in procs):
            break
        first_error = first_error or outs[0][1][-2000:] + outs[1][1][-2000:]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, (first_error, err[-3000:])
    # Only process 0 prints the JSON results. Process 1 prints nothing but gloo's connection lines,
    # which gloo's threads may interleave mid-line, so look for JSON's braces and quotes, which
    # those lines never contain.
    assert '"fcmi"' in outs[0][0], outs[0][0][-2000:]
    assert not set('{}"') & set(outs[1][0]), outs[1][0]
    a = json.loads((single / "record.json").read_text())
    b = json.loads((multi / "record.json").read_text())
    assert b["environment"]["processes"] == 2 and b["environment"]["devices"] == 4
    assert a["environment"]["processes"] == 1
    for x, y in zip(a["results"], b["results"]):
        assert x["bounds"] == y["bounds"] and x["summary"] == y["summary"]


def _small_population():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 8, 8, 1)).astype(np.float32)
    y = (x[:, 0, 0, 0] + x[:, 3, 3, 0] > 0).astype(np.int32)
    sup = S.draw_supersample(jax.random.PRNGKey(0), Dataset(x, y), 1400)
    px, py, idx = S.supersample_runs(sup, S.draw_masks(jax.random.PRNGKey(1), 6, 1400))
    keys = jax.random.split(jax.random.PRNGKey(2), 6)
    net = nets.mlp((8, 8, 1), (64,), 2)
    return net, np.asarray(keys), px, py, idx, S.TrainConfig(epochs=3, batch_size=128, optimizer=optax.adam(1e-2))


def test_population_plans_fit_the_memory_budget_and_change_nothing():
    net, keys, px, py, idx, cfg = _small_population()
    full = S.plan_population(net, cfg, keys, px, py, idx, devices=jax.devices())
    assert full.chunk == 6 and full.cfg.eval_batch == 0 and full.bytes_needed <= full.budget
    reference = S.train_population(net, keys, px, py, idx, cfg, progress=False)
    half = full.bytes_needed // 2
    plan = S.plan_population(net, cfg, keys, px, py, idx, devices=jax.devices(), budget=half)
    assert plan.bytes_needed <= half and (plan.chunk < 6 or plan.cfg.eval_batch > 0)
    assert S.device_bytes(plan.compiled) == plan.bytes_needed
    np.testing.assert_array_equal(S.train_population(net, keys, px, py, idx, cfg, progress=False, budget=half),
                                  reference)
    # An explicit chunk (--chunk) is kept: where it cannot fit, the plan says so instead of changing it.
    with pytest.raises(ValueError, match="6 run.* per device need .* --chunk"):
        S.plan_population(net, cfg, keys, px, py, idx, devices=jax.devices(), chunk=6, budget=half)
    assert S.plan_population(net, cfg, keys, px, py, idx, devices=jax.devices(), chunk=2).chunk == 2
    with pytest.raises(ValueError, match="1 run.* per device need .* more than the .* available"):
        S.plan_population(net, cfg, keys, px, py, idx, devices=jax.devices(), budget=1000)


def test_batched_evaluation_predicts_the_same():
    net, keys, px, py, idx, cfg = _small_population()
    whole = S.train_population(net, keys[:2], px, py, idx[:2], cfg, progress=False)
    batched = S.train_population(net, keys[:2], px, py, idx[:2], cfg._replace(eval_batch=300), progress=False)
    np.testing.assert_array_equal(whole, batched)
    typed = jax.random.wrap_key_data(np.asarray(keys[:2]))            # jax.random.key-style keys work too
    np.testing.assert_array_equal(S.train_population(net, typed, px, py, idx[:2], cfg, progress=False), whole)
    assert nets.conv_for_backend() == "matmul" and nets.cnn((28, 28, 1), 2).name.endswith("-matmul")   # on CPU


def test_langevin_population_over_four_devices_equals_one(tmp_path):
    """The k2 runs of a draw sharded over 4 forced host devices give the same statistics and
    bounds as on one device."""
    from genbounds.experiments.langevin_runner import LangevinConfig, run_langevin_experiment

    kwargs = dict(dataset="digits", widths=(8,), n=40, n_test=50, steps=10, every=5, k1=1, k2=4, v0=1e-3,
                  v_inf=1e-4)
    one = run_langevin_experiment(LangevinConfig(**kwargs), tmp_path / "one", progress=False, log=lambda m: None)
    script = ("import json, sys\n"
              "from genbounds.experiments.langevin_runner import LangevinConfig, run_langevin_experiment\n"
              f"rec = run_langevin_experiment(LangevinConfig(**{kwargs!r}), sys.argv[1], progress=False, "
              "log=lambda m: None)\n"
              "print(json.dumps([rec['environment']['devices'], rec['results']]))\n")
    (tmp_path / "run.py").write_text(script)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "four")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    devices, results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert devices == 4 and one["environment"]["devices"] == 1
    for a, b in zip(one["results"], results):
        assert a["train_error"] == b["train_error"] and a["test_error"] == b["test_error"]
        for name in a["bounds"]:
            assert a["bounds"][name]["value"] == pytest.approx(b["bounds"][name]["value"], rel=1e-5)


POPULATION_MESH = textwrap.dedent("""
    import jax
    from genbounds.estimators.devices import population_mesh, population_shardings
    assert jax.local_device_count() == 4, jax.devices()
    sizes = [int(population_mesh(runs=r).devices.size) for r in (8, 6, 7, 1)]
    assert sizes == [4, 3, 1, 1], sizes                      # the most devices that divide the runs
    mesh = population_mesh(jax.devices()[:2])
    assert mesh.axis_names == ("pop",) and list(mesh.devices) == jax.devices()[:2]
    assert population_mesh().devices.size == 4
    pop, rep = population_shardings(population_mesh(runs=6))
    x = jax.device_put(jax.numpy.arange(6.0), pop)
    assert len(x.sharding.device_set) == 3 and x.sharding.shard_shape(x.shape) == (2,)
    assert rep.shard_shape((6,)) == (6,)
    for bad in (0, -2):
        try:
            population_mesh(runs=bad)
        except ValueError as err:
            assert "'runs'" in str(err), err
        else:
            raise AssertionError(bad)
    print("POPULATION-MESH-OK")
""")


def test_population_mesh_uses_the_most_devices_that_divide_the_runs():
    proc = _run(POPULATION_MESH)
    assert proc.returncode == 0 and "POPULATION-MESH-OK" in proc.stdout, proc.stderr[-2000:]
