"""The 0-1 loss of outputs that are not finite: an error, never a class."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genbounds.estimators import nets
from genbounds.estimators import supersample as S
from genbounds.estimators.losses import zero_one


def test_non_finite_logits_count_as_errors():
    logits = jnp.array([[jnp.nan, 0.0], [1.0, 0.0], [jnp.inf, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(zero_one(logits, jnp.array([0, 0, 0, 1])), [1.0, 0.0, 1.0, 0.0])
    # A population member that diverges predicts -1 on every point: all errors, never "class 0".
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2, 1, 1)).astype(np.float32)
    y = np.zeros(40, dtype=np.int32)
    net = nets.mlp((2, 1, 1), (), 2)
    preds = S.train_population(net, jax.random.split(jax.random.PRNGKey(0), 2), x, y,
                               np.tile(np.arange(20), (2, 1)),
                               S.TrainConfig(epochs=2, batch_size=10, optimizer=optax.sgd(1e30)), progress=False)
    assert preds.shape == (2, 40) and set(np.unique(preds)) <= {-1, 0, 1}
