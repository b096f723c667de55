"""The same architecture is the same Net object, so compiled programs taking it as a static argument are reused."""

from genbounds.estimators import nets


def test_the_same_architecture_is_the_same_net():
    assert nets.mlp((10, 1, 1), [16], 2) is nets.mlp([10, 1, 1], (16,), 2)
    assert nets.mlp((10, 1, 1), (16,), 2) is not nets.mlp((10, 1, 1), (17,), 2)
    a = nets.cnn((10, 10, 1), 3, channels=(4, 4), dense=(8,))
    assert a is nets.cnn([10, 10, 1], 3, channels=[4, 4], dense=[8]) and hash(a) == hash(nets.cnn((10, 10, 1), 3,
                                                                                                  (4, 4), (8,)))
    assert nets.cnn((10, 10, 1), 3, channels=(4, 4), dense=(8,), conv="xla").name.endswith("-matmul") is False
