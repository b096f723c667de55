"""Subspace models, quantisation and certify_compressed (fast unit tests)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genbounds.bounds.compression import CompressionBound, compression_certificate, description_length
from genbounds.estimators.compression import certify_compressed, certify_quantized, search_size, split_indices
from genbounds.estimators.compression import quantize as Q
from genbounds.estimators.compression.subspace import (
    Projection,
    ProjectionKind,
    dense_apply,
    dense_scale,
    factor_pair,
    subspace,
)
from genbounds.estimators.data import Dataset
from genbounds.experiments import recipes
from genbounds.experiments.compress_runner import (
    CompressConfig,
    compress_text,
    prior_indices,
    reinit_head,
    split_record,
)


@pytest.mark.parametrize("kind", list(ProjectionKind))
def test_projection_regenerates_bit_for_bit_from_its_seed(kind):
    a = Projection(kind, 1000, 24, seed=7, chunk=128)
    b = Projection(kind, 1000, 24, seed=7, chunk=128)
    other = Projection(kind, 1000, 24, seed=8, chunk=128)
    pa, pb = a.matrix(), b.matrix()
    assert pa.shape == (1000, 24)
    assert pa.tobytes() == pb.tobytes()
    assert not np.array_equal(pa, other.matrix())
    w = jax.random.normal(jax.random.key(0), (24,))
    assert np.asarray(a.apply(w)).tobytes() == np.asarray(b.apply(w)).tobytes()


def test_chunked_dense_equals_the_unchunked_product():
    proj = Projection(ProjectionKind.DENSE, 1001, 17, seed=3, chunk=100)   # 11 chunks, the last one partial
    key = jax.random.key(3)
    whole = np.concatenate([np.asarray(jax.random.normal(jax.random.fold_in(key, k), (100, 17)))
                            for k in range(11)])[:1001] * dense_scale(1001)
    assert whole.dtype == np.float32
    np.testing.assert_array_equal(proj.matrix(), whole)
    w = np.asarray(jax.random.normal(jax.random.key(1), (17,)), np.float64)
    np.testing.assert_allclose(np.asarray(dense_apply(key, jnp.asarray(w, jnp.float32), 1001, 100)),
                               whole.astype(np.float64) @ w, rtol=1e-5, atol=1e-6)
    # entries N(0, 1/D): column norms near 1
    norms = np.linalg.norm(proj.matrix(), axis=0)
    assert np.all(np.abs(norms - 1) < 0.15)


@pytest.mark.parametrize("orthogonal", [False, True])
def test_kronecker_projection_shape_and_columns(orthogonal):
    proj = Projection(ProjectionKind.KRONECKER, 900, 12, seed=0, orthogonal=orthogonal)
    a, b = proj.operands()
    assert factor_pair(12) == (3, 4)
    assert a.shape == (30, 3) and b.shape == (30, 4)
    p = proj.matrix()
    assert p.shape == (900, 12)
    np.testing.assert_allclose(p, np.kron(np.asarray(a), np.asarray(b))[:900], rtol=1e-6, atol=1e-7)
    if orthogonal:        # D1 D2 = D here, so the columns are exactly orthonormal
        np.testing.assert_allclose(p.T @ p, np.eye(12), atol=1e-5)
    # D not a product of the factor sizes: the first D rows of the product
    p2 = Projection(ProjectionKind.KRONECKER, 905, 12, seed=0).matrix()
    assert p2.shape == (905, 12)


def test_factor_pair():
    assert factor_pair(1000) == (25, 40)
    assert factor_pair(13) == (1, 13)
    assert factor_pair(1) == (1, 1)
    with pytest.raises(ValueError, match="'d'"):
        factor_pair(0)


def test_subspace_over_any_pytree_starts_at_theta0():
    params0 = {"a": jnp.ones((3, 2)), "b": [jnp.arange(4.0), jnp.zeros(())]}
    sub = subspace(lambda p, x: x * 0.0, params0, 5, seed=1, kind="dense")
    same = sub.params(jnp.zeros(5))
    for x, y in zip(jax.tree_util.tree_leaves(same), jax.tree_util.tree_leaves(params0)):
        np.testing.assert_array_equal(x, y)
    e0 = sub.params(jnp.eye(5)[0])
    flat = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(e0)])
    flat0 = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(params0)])
    np.testing.assert_allclose(flat - flat0, sub.projection.matrix()[:, 0], rtol=1e-6)


def test_projection_refuses_bad_inputs():
    with pytest.raises(ValueError, match="'kind'"):
        Projection("sparse", 10, 2, seed=0)
    with pytest.raises(ValueError, match="'d'"):
        Projection("dense", 10, 0, seed=0)
    with pytest.raises(ValueError, match="'seed'"):
        Projection("dense", 10, 2, seed=-1)


def test_quantisation_assigns_the_nearest_level():
    rng = np.random.default_rng(0)
    w = rng.normal(size=500)
    c = np.sort(rng.normal(size=7))
    s = Q.assign(w, c)
    brute = np.array([np.argmin([abs(x - v) for v in c]) for x in w])
    np.testing.assert_array_equal(s, brute)
    np.testing.assert_array_equal(np.asarray(Q.quantize(jnp.asarray(w), jnp.asarray(c))), c[brute].astype(np.float32))


def test_kmeans_codebook_is_a_fixed_point_of_lloyd():
    rng = np.random.default_rng(1)
    w = np.concatenate([rng.normal(-3, 0.1, 300), rng.normal(0, 0.1, 300), rng.normal(4, 0.1, 300)])
    c = Q.kmeans_codebook(w, 3)
    np.testing.assert_allclose(c, [w[:300].mean(), w[300:600].mean(), w[600:].mean()], atol=1e-12)
    s = Q.assign(w, c)
    np.testing.assert_allclose(c, [w[s == j].mean() for j in range(3)], atol=1e-12)
    u = Q.uniform_codebook(w, 5)
    np.testing.assert_allclose(u, np.linspace(w.min(), w.max(), 5))


def test_straight_through_gradient():
    w = jnp.array([0.1, 0.9, -0.4, 2.0])
    c = jnp.array([-0.5, 0.0, 1.0])
    q = Q.quantize_ste(w, c)
    np.testing.assert_array_equal(np.asarray(q), [0.0, 1.0, -0.5, 1.0])
    g = jnp.array([1.0, 2.0, 3.0, 4.0])
    gw, gc = jax.grad(lambda w, c: jnp.sum(g * Q.quantize_ste(w, c)), argnums=(0, 1))(w, c)
    np.testing.assert_array_equal(np.asarray(gw), np.asarray(g))          # identity in w
    np.testing.assert_array_equal(np.asarray(gc), [3.0, 1.0, 6.0])       # each level gets its coordinates' sum


def test_stored_codebook_is_float16():
    c = Q.as_stored(np.array([0.1, 1 / 3, -2.7]))
    np.testing.assert_array_equal(c, np.array([0.1, 1 / 3, -2.7], np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="'codebook'"):
        Q.as_stored(np.array([np.nan, 1.0]))


# ----------------------------------------------------------------------------------------------- certificates


def _blobs(n, seed=0, k=3, dim=4):
    centres = 3.0 * np.random.default_rng(99).normal(size=(k, dim))     # one task; seed draws its examples
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return Dataset((centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y, k)


def _mlp_apply(params, x):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def _mlp_params(key, dim=4, hidden=16, k=3):
    k1, k2 = jax.random.split(key)
    return {"w1": jax.random.normal(k1, (dim, hidden)) / 2, "b1": jnp.zeros(hidden),
            "w2": jax.random.normal(k2, (hidden, k)) / 4, "b2": jnp.zeros(k)}


def test_prior_and_bound_index_sets_are_disjoint():
    prior = np.random.default_rng(0).permutation(100)[:40]
    p, b = split_indices(100, prior)
    assert np.intersect1d(p, b).size == 0
    assert np.union1d(p, b).size == 100 and b.size == 60
    p2, b2 = split_indices(100, prior, bound_indices=np.setdiff1d(np.arange(100), prior)[:10])
    assert np.intersect1d(p2, b2).size == 0 and b2.size == 10


def test_data_dependent_mode_refuses_a_prior_split_overlapping_the_bound_set():
    with pytest.raises(ValueError, match="'bound_indices' overlaps 'prior_indices'"):
        split_indices(100, np.arange(10), bound_indices=np.arange(5, 50))
    with pytest.raises(ValueError, match="'prior_indices' repeats"):
        split_indices(100, np.array([1, 1, 2]))
    with pytest.raises(ValueError, match="'prior_indices' holds indices outside"):
        split_indices(100, np.array([100]))
    with pytest.raises(ValueError, match="leaves no example"):
        split_indices(3, np.arange(3))
    data = _blobs(60)
    with pytest.raises(ValueError, match="overlaps"):
        certify_compressed(_mlp_apply, _mlp_params(jax.random.key(0)), data, d=8, levels=3,
                           prior_indices=np.arange(20), bound_indices=np.arange(10, 60), epochs=1, progress=False)


def test_split_indices_takes_integer_arrays_only():
    p, b = split_indices(10, np.array([3, 1], np.uint8), [7, 2])
    np.testing.assert_array_equal(p, [1, 3])
    np.testing.assert_array_equal(b, [2, 7])
    for prior, bound, name in (([0.0, 1.0], None, "prior_indices"), (np.ones(10, bool), None, "prior_indices"),
                               ([0, 1], [2.2, 2.7], "bound_indices"), ([0], [True], "bound_indices"),
                               (["0"], None, "prior_indices")):
        with pytest.raises(ValueError, match=f"'{name}' must be an array of integer indices"):
            split_indices(10, prior, bound)
    p, b = split_indices(10, [])                          # an empty prior split: the bound set is everything
    assert p.size == 0 and b.size == 10


def test_certify_quantized_evaluates_the_float16_codebook_it_charges_for():
    data = _blobs(120, 5)
    sub = subspace(_mlp_apply, _mlp_params(jax.random.key(4)), 6, seed=0, kind="dense")
    codebook = Q.as_stored(np.array([-0.4, 0.1, 0.6]))
    symbols = np.array([0, 2, 1, 1, 0, 2])
    cert, code, k = certify_quantized(sub, symbols, codebook, data, delta=0.05, search={"levels": 1})
    ops = sub.projection.operands()
    logits = sub.apply_fn(sub.params(jnp.asarray(codebook[symbols]), ops), jnp.asarray(data.x))
    assert k == int(np.sum(np.asarray(jnp.argmax(logits, -1)) != data.y))
    assert cert.details["codebook"] == [float(c) for c in codebook]
    assert code.codebook_bits == 3 * 16 and cert.value == compression_certificate(k, 120, code, 0.05).value
    with pytest.raises(ValueError, match="'codebook' is not float16-exact"):
        certify_quantized(sub, symbols, np.array([-0.4, 0.1, 0.6]), data, delta=0.05, search={})
    with pytest.raises(ValueError, match="'symbols' must hold one symbol per subspace coordinate"):
        certify_quantized(sub, symbols[:5], codebook, data, delta=0.05, search={})
    with pytest.raises(ValueError, match="'symbols'"):
        certify_quantized(sub, symbols + 0.5, codebook, data, delta=0.05, search={})


def test_a_declared_levels_knob_must_agree_with_the_levels_tried():
    data = _blobs(100, 6)
    res = certify_compressed(_mlp_apply, _mlp_params(jax.random.key(0)), data, d=6, levels=(3, 4),
                             search={"levels": 2, "d": 3}, epochs=1, progress=False)
    assert res.code.searched == 6
    with pytest.raises(ValueError, match="argument 'search' declares 8 values of 'levels'"):
        certify_compressed(_mlp_apply, _mlp_params(jax.random.key(0)), data, d=6, levels=(3, 4),
                           search={"levels": 8}, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"argument 'method' must be one of \('compression_kl'"):
        certify_compressed(_mlp_apply, None, data, d=6, levels=3, method="kl")


def _record(best_paid: bool) -> dict:
    row = {"d": 4, "levels": 3, "bits": 68.0, "bound_error": 0.1, "test_error": 0.12, "certificate": 0.25000001}
    s = {"table": [row], "searched": 3,
         "best": {"label": "compressed d=4 L=3", "certificate": 0.25000001, "test_error": 0.12, "bits": 68.0},
         "heldout_baseline": {"certificate": 0.2, "test_error": 0.11, "bound_error": 0.1, "beaten": False}}
    if best_paid:
        s["best_paid"] = {"label": "held-out baseline (theta_0's network)", "certificate": 0.21230001,
                          "candidates": 2, "delta": 0.025}
    return {"compression": s, "results": [{"certificate": {"delta": 0.025}}], "timings": {"total_s": 3.0}}


def test_compress_text_reports_only_a_paid_best_beside_the_heldout_baseline():
    text = compress_text(_record(True), "out")
    assert text.splitlines()[1].split()[-1] == "0.2501"                 # rounded up
    assert "separate statements" in text and "paid below" in text
    assert ("best of the two, paid (union bound, each recomputed at delta / 2): held-out baseline (theta_0's "
            "network): certificate 0.2124 (w.p. >= 1 - 0.025)") in text
    old = compress_text(_record(False), "out")                          # a record written before best_paid
    assert "best of the two" not in old and "to be paid by a union bound (union_minimum)" in old


def test_every_searched_knob_is_charged():
    assert search_size({"d": 3, "levels": 4, "finetune_epochs": 2, "checkpoints": 5}) == 120
    with pytest.raises(ValueError, match=r"search\['d'\]"):
        search_size({"d": 0})
    data, test = _blobs(300, 0), _blobs(200, 1)
    res = certify_compressed(_mlp_apply, _mlp_params(jax.random.key(0)), data, d=12, levels=(3, 5), seed=0,
                             test=test, epochs=3, lr=0.05, search={"d": 3, "checkpoints": 5}, progress=False)
    code = res.code
    assert res.search == {"d": 3, "checkpoints": 5, "levels": 2}
    assert code.searched == 30
    assert math.log2(30) <= code.search_bits < math.log2(30) + 1e-12   # log2(d x checkpoints x levels)
    cert = res.certificate
    assert cert.details["search"] == {"d": 3, "checkpoints": 5, "levels": 2}
    # the certificate is the compression bound of the recorded errors and code, recomputed from scratch
    symbols_code = description_length(np.zeros(12, np.int64), res.levels, searched=30)
    assert symbols_code.searched == 30
    k = round(res.bound_error * cert.n_bound)
    again = compression_certificate(k, cert.n_bound, code, 0.025)
    assert again.value == cert.value
    assert cert.kl == pytest.approx(code.total_bits * math.log(2), rel=1e-12)
    # fewer searched settings could only give a smaller bound: the search is really paid
    cheaper = compression_certificate(k, cert.n_bound, code._replace(searched=1, search_bits=0.0), 0.025)
    assert cheaper.value < cert.value


def test_certify_compressed_plain_jax_model():
    data, test = _blobs(400, 0), _blobs(300, 1)
    res = certify_compressed(_mlp_apply, _mlp_params(jax.random.key(1)), data, d=20, levels=5, seed=3, test=test,
                             epochs=8, lr=0.05, finetune_epochs=1, progress=False)
    cert = res.certificate
    assert cert.bound == CompressionBound.KL_INVERSE.value
    assert cert.n_bound == 400 and cert.n_prior == 0
    assert res.d == 20 and res.levels == 5
    assert 0 <= res.bound_error < 0.2 and res.test_error < 0.25          # the blobs are easy
    assert res.bound_error <= cert.value < 1.0
    d = res.to_dict()
    assert d["bits"] == res.code.total_bits and d["certificate"]["value"] == cert.value
    assert set(d["seconds"]) >= {"train", "quantize_certify"}
    # the certified network is theta_0 + P c[s] with the float16 codebook
    assert all(float(np.float16(c)) == c for c in res.codebook)


def test_certify_compressed_data_dependent_counts_the_prior_split():
    data = _blobs(300, 2)
    prior = np.arange(0, 300, 3)
    res = certify_compressed(_mlp_apply, _mlp_params(jax.random.key(2)), data, d=10, levels=4, prior_indices=prior,
                             train_on="bound", epochs=3, lr=0.05, progress=False)
    assert res.certificate.n_prior == 100 and res.certificate.n_bound == 200


def test_certify_compressed_flax_model():
    nn = pytest.importorskip("flax.linen")

    class Tiny(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(nn.tanh(nn.Dense(8)(x)))

    model = Tiny()
    data = _blobs(300, 4)
    variables = model.init(jax.random.key(0), data.x[:1])
    res = certify_compressed(model, variables, data, d=16, levels=5, epochs=5, lr=0.05, progress=False)
    assert res.certificate.n_bound == 300
    assert res.bound_error < 0.3 and res.certificate.value < 1.0


def test_lt22_recipes_declare_their_grids_and_theta0():
    runs = {name: recipes.RECIPES[name].runs[0][1] for name in
            ("lt22-fashion", "lt22-fashion-transfer", "lt22-fashion-dd", "lt22-digits")}
    assert [c.theta0 for c in runs.values()] == ["init", "transfer", "data", "init"]
    assert runs["lt22-fashion"].search() == {"d": 2, "levels": 3, "settings_looked_at": 4}
    assert search_size(runs["lt22-fashion-dd"].search()) == 36
    assert runs["lt22-fashion-transfer"].theta0_source == "mnist-5k"
    # every compression setting looked at on Fashion-MNIST's training set before the transfer recipe was fixed
    assert runs["lt22-fashion-transfer"].search() == {"d": 1, "levels": 2, "settings_looked_at": 30}
    quick = recipes.scale_epochs(runs["lt22-fashion"], 0.1)
    assert (quick.epochs, quick.finetune_epochs) == (2, 1)
    assert recipes.scale_epochs(runs["lt22-digits"], 0.1).finetune_epochs == 0     # none stays none


def test_the_prior_split_round_trips_through_the_record_and_refuses_edits():
    idx = np.sort(np.random.default_rng(3).permutation(1001)[:400])
    record = {"compression": {"prior_split": split_record(idx, 1001)}}
    np.testing.assert_array_equal(prior_indices(record), idx)
    assert record["compression"]["prior_split"]["n_prior"] == 400
    hexed = record["compression"]["prior_split"]["mask_hex"]
    record["compression"]["prior_split"]["mask_hex"] = ("f" if hexed[0] != "f" else "0") + hexed[1:]
    with pytest.raises(ValueError, match="SHA-256"):
        prior_indices(record)


def test_reinit_head_keeps_the_features_and_puts_the_classifier_back():
    trained = {"conv": [{"w": jnp.ones((3, 3, 1, 2)), "b": jnp.ones(2)}],
               "dense": [{"w": jnp.ones((8, 4)), "b": jnp.ones(4)}, {"w": jnp.ones((4, 3)), "b": jnp.ones(3)}]}
    init = jax.tree_util.tree_map(jnp.zeros_like, trained)
    out = reinit_head(trained, init)
    assert float(out["dense"][-1]["w"].sum()) == 0.0 and float(out["dense"][-1]["b"].sum()) == 0.0
    assert float(out["dense"][0]["w"].sum()) == 32.0 and float(out["conv"][0]["w"].sum()) == 18.0
    assert float(trained["dense"][-1]["w"].sum()) == 12.0                 # the input is not modified


def test_reinit_head_is_refused_without_a_trained_theta0_and_names_its_checkpoints():
    with pytest.raises(ValueError, match="argument 'theta0_reinit_head' must be used with --theta0 transfer or data"):
        CompressConfig.flat(theta0="init", theta0_reinit_head=True)
    plain = CompressConfig.flat(theta0="data")
    head = plain.replace(theta0_reinit_head=True)
    # a run without the setting keeps its checkpoint names; one with it never resumes from theirs
    assert plain.checkpoint_digest(plain.THETA0_FIELDS) == plain.digest(plain.THETA0_FIELDS)
    assert head.checkpoint_digest(head.THETA0_FIELDS) != plain.checkpoint_digest(plain.THETA0_FIELDS)
    assert head.checkpoint_digest(head.W_FIELDS) != plain.checkpoint_digest(plain.W_FIELDS)
