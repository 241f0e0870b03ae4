"""Tests for mnist_knn.analysis.convnet: a small convolutional net, trained deterministically (needs PyTorch)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mnist_knn.analysis.convnet import ConvNetClassifier, convnet_features, convnet_predict, fit_convnet

torch = pytest.importorskip("torch")


def shapes(seed=0, n_per_class=24):
    """Two classes of 28x28 digits: a horizontal bar or a vertical bar, jittered, with noise."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 40, (2 * n_per_class, 28, 28))
    y = np.repeat([3, 7], n_per_class)  # labels need not be 0..n-1
    for i in range(len(y)):
        a, b = rng.integers(6, 18, 2)
        if y[i] == 3:
            X[i, a:a + 3, 4:24] = 255
        else:
            X[i, 4:24, b:b + 3] = 255
    return X.astype(np.uint8), y


SMALL = dict(epochs=6, batch_size=8, learning_rate=3e-3)


def test_it_learns_a_tiny_problem():
    X, y = shapes(n_per_class=16)
    net = fit_convnet(X, y, seed=0, **SMALL)
    Xt, yt = shapes(seed=1)
    assert (convnet_predict(net, Xt) == yt).mean() >= 0.9
    assert_array_equal(net.classes_, [3, 7])
    p = net.predict_proba(Xt)
    assert p.shape == (len(yt), 2) and np.allclose(p.sum(axis=1), 1)
    f = convnet_features(net, X.reshape(len(X), -1))  # flat rows are accepted
    assert f.shape == (len(X), 128) and f.dtype == np.float32 and (f >= 0).all()


def test_two_runs_with_one_seed_give_bit_identical_weights_and_restore_torch_settings():
    X, y = shapes(n_per_class=8)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    a = ConvNetClassifier(seed=5, epochs=2, batch_size=8).fit(X, y)
    b = ConvNetClassifier(seed=5, epochs=2, batch_size=8).fit(X, y)
    c = ConvNetClassifier(seed=6, epochs=2, batch_size=8).fit(X, y)
    assert a.state_.keys() == b.state_.keys()
    for k in a.state_:
        assert a.state_[k].tobytes() == b.state_[k].tobytes(), k
    assert any(a.state_[k].tobytes() != c.state_[k].tobytes() for k in a.state_)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_trained_weights_are_cached(tmp_path):
    X, y = shapes(n_per_class=8)
    cold = ConvNetClassifier(epochs=1, batch_size=8, cache=tmp_path).fit(X, y)
    warm = ConvNetClassifier(epochs=1, batch_size=8, cache=tmp_path).fit(X, y)
    assert cold.trained_ and not warm.trained_
    assert cold.fit_seconds_ > 0 and warm.fit_seconds_ == cold.fit_seconds_  # the training's time, kept with the weights
    assert len(list(tmp_path.glob("convnet-*.npz"))) == 1
    for k in cold.state_:
        assert_array_equal(cold.state_[k], warm.state_[k])
    assert_array_equal(cold.predict(X), warm.predict(X))
    ConvNetClassifier(epochs=2, batch_size=8, cache=tmp_path).fit(X, y)  # other settings, other entry
    assert len(list(tmp_path.glob("convnet-*.npz"))) == 2


def test_a_pickled_model_predicts_the_same():
    import pickle

    X, y = shapes(n_per_class=8)
    net = ConvNetClassifier(epochs=1, batch_size=8).fit(X, y)
    assert_array_equal(pickle.loads(pickle.dumps(net)).decision_function(X), net.decision_function(X))


@pytest.mark.parametrize("params, match", [
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"learning_rate": 0}, "learning_rate must be a positive"),
    ({"weight_decay": -1}, "weight_decay must be a non-negative"),
    ({"seed": -1}, "seed must be a non-negative integer"),
])
def test_invalid_parameters_are_refused(params, match):
    X, y = shapes(n_per_class=2)
    with pytest.raises(ValueError, match=match):
        ConvNetClassifier(**params).fit(X, y)


def test_invalid_inputs_are_refused():
    X, y = shapes(n_per_class=2)
    with pytest.raises(ValueError, match="one label per digit"):
        ConvNetClassifier().fit(X, y[:-1])
    with pytest.raises(ValueError, match="at least two classes"):
        ConvNetClassifier().fit(X, np.zeros(len(X), int))
    with pytest.raises(ValueError, match="square"):
        ConvNetClassifier().fit(X.reshape(len(X), 28 * 2, 14), y)
    with pytest.raises(ValueError, match="not fitted"):
        ConvNetClassifier().predict(X)
