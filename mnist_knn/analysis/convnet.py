"""A small convolutional network (LeNet-like) trained deterministically on the CPU (notebook 07).

The net (after LeCun et al., 1998, with ReLU and max pooling)::

    28x28 -> conv 5x5, 16 maps, padding 2 -> ReLU -> max-pool 2 -> 14x14x16
          -> conv 5x5, 32 maps -> ReLU -> max-pool 2 -> 5x5x32 = 800
          -> dense 128 -> ReLU   (the learned features: :meth:`ConvNetClassifier.features`)
          -> dense 10            (one logit per class)

trained with Adam on the cross-entropy, mini-batches in a seeded order. Training is reproducible to
the bit on one machine: ``torch.manual_seed`` seeds the initial weights, the batch order comes from a
seeded NumPy generator, ``torch.use_deterministic_algorithms(True)`` refuses nondeterministic kernels,
and the thread count is fixed (:data:`TORCH_THREADS`; a sum split over another number of threads may round
differently). Both settings are restored afterwards. Another CPU or another PyTorch build may still
round differently, so a notebook shows the resulting error, not the weights.

Cost, measured here (2 cores shared with other jobs, so CPU time is the steadier figure): an epoch at the
default batch of 256 takes about 1 ms of CPU per digit (1.96 s for 2,000 digits), so about a minute of
CPU for the 60,000 training digits, and the default 5 epochs some 3 minutes of wall-clock time on the two
cores (extrapolated from the subset, not timed on the full set). A batch of 64 costs about 3 ms per digit
(18.8 s of CPU for one epoch of 6,000 digits). Prediction takes about 1 ms per digit.

PyTorch is imported only inside the functions: the package imports without it, and using the net
without it raises an :class:`ImportError` saying how to install it.

- :class:`ConvNetClassifier`: ``fit`` / ``predict`` / ``predict_proba`` / ``features``, with the trained
  weights optionally cached under ``data/cache/``;
- :func:`fit_convnet`, :func:`convnet_predict`, :func:`convnet_features`: the same as functions.
"""

import contextlib
import time
from pathlib import Path

import numpy as np

from .. import validation
from ..paths import CACHE_DIR
from ..progress import progress_bar
from ..store import cached_arrays, digest

__all__ = [
    "CONVNET_CACHE_VERSION", "TORCH_THREADS", "ConvNetClassifier", "convnet_features", "convnet_predict", "fit_convnet",
]

#: Threads PyTorch uses while training and predicting: the machine's two cores, fixed for reproducibility.
TORCH_THREADS = 2
#: Bump when a change to the net or its training could change any cached weights.
CONVNET_CACHE_VERSION = 2
_FEATURES = 128
_FIT_SECONDS = "fit_seconds"  # stored beside the weights in the cache
_BATCH_PREDICT = 2000


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the convolutional net needs PyTorch (CPU build): pip install torch==2.13.0+cpu "
            "--extra-index-url https://download.pytorch.org/whl/cpu"
        ) from exc
    return torch


def _network(torch, n_classes):
    """The untrained net as ``(body, head)``: ``body`` maps images to the 128 learned features."""
    nn = torch.nn
    body = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, _FEATURES), nn.ReLU(),
    )
    head = nn.Linear(_FEATURES, n_classes)
    return body, head


@contextlib.contextmanager
def _deterministic(torch, n_threads):
    """Deterministic kernels and a fixed thread count for the block; the previous settings restored after."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(n_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _images(X, name="X"):
    """Digits as float32 of shape (n, 1, 28, 28), scaled to [0, 1]."""
    X = validation.images(X, name, square=True)
    return (X.astype(np.float32) / np.float32(255))[:, None, :, :]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {name}={value!r}.")
    return int(value)


def _non_negative(value, name, *, positive=False):
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if not number or not np.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "a positive" if positive else "a non-negative"
        raise ValueError(f"{name} must be {kind} finite number; got {name}={value!r}.")
    return float(value)


class ConvNetClassifier:
    """A LeNet-like convolutional net, trained deterministically on the CPU.

    Parameters
    ----------
    epochs : int, default=5
        Passes over the training digits.
    batch_size : int, default=256
    learning_rate : float, default=1e-3
        Adam's step size.
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    seed : int, default=0
        Seeds the initial weights (``torch.manual_seed``) and the batch order.
    n_threads : int, default=TORCH_THREADS
    cache : bool or path-like, default=False
        Store the trained weights under ``data/cache/`` (or the given directory), keyed by a digest of the
        training digits, the labels, every parameter above, PyTorch's version and
        :data:`CONVNET_CACHE_VERSION`; a warm ``fit`` loads them instead of training.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    state_ : dict of str to ndarray
        The trained weights, as NumPy arrays (so a pickle of the model needs no PyTorch to be read).
    trained_ : bool
        True when ``fit`` trained the net, False when it loaded cached weights.
    fit_seconds_ : float
        Wall-clock seconds the training took, measured when it ran (stored with cached weights, so a
        warm ``fit`` still reports the training's cost, not the load's).
    """

    def __init__(self, epochs=5, batch_size=256, learning_rate=1e-3, weight_decay=0.0, seed=0, n_threads=TORCH_THREADS,
                 cache=False):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.seed = seed
        self.n_threads = n_threads
        self.cache = cache

    def get_params(self, deep=True):
        """The constructor's parameters (as scikit-learn's ``get_params``)."""
        return {name: getattr(self, name) for name in
                ("epochs", "batch_size", "learning_rate", "weight_decay", "seed", "n_threads", "cache")}

    def __repr__(self):
        return f"ConvNetClassifier({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _check_params(self):
        _positive_int(self.epochs, "epochs")
        _positive_int(self.batch_size, "batch_size")
        _positive_int(self.n_threads, "n_threads")
        _non_negative(self.learning_rate, "learning_rate", positive=True)
        _non_negative(self.weight_decay, "weight_decay")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got seed={self.seed!r}.")

    def fit(self, X, y):
        """Train the net on digits ``X`` (``(n, 28, 28)`` or ``(n, 784)``, 0-255 ink) with labels ``y``.

        Returns self.
        """
        self._check_params()
        torch = _torch()
        images = _images(X)
        y = np.asarray(validation.not_masked(y, "y"))
        if y.ndim != 1 or len(y) != len(images):
            raise ValueError(f"y must be 1-D with one label per digit ({len(images)}); got shape {y.shape}.")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y must hold at least two classes.")
        n_classes = len(self.classes_)

        def train():
            start = time.perf_counter()
            state = self._train(torch, images, codes.astype(np.int64), n_classes)
            return {**state, _FIT_SECONDS: np.array(time.perf_counter() - start)}

        self.trained_ = True
        if self.cache:
            params = {k: v for k, v in self.get_params().items() if k != "cache"}
            text = f"{sorted(params.items())}|torch={torch.__version__}|v{CONVNET_CACHE_VERSION}"
            key = digest(images, codes, np.frombuffer(text.encode(), np.uint8))
            path = Path(CACHE_DIR if self.cache is True else self.cache) / f"convnet-{key}.npz"
            shapes = {k: v.shape for k, v in self._state_shapes(torch, n_classes).items()}
            trained = []

            def accept(stored):
                ok = set(stored) == set(shapes) | {_FIT_SECONDS} and stored[_FIT_SECONDS].shape == () and all(
                    stored[k].shape == s and stored[k].dtype == np.float32 and np.isfinite(stored[k]).all()
                    for k, s in shapes.items())
                return stored if ok else None

            state = dict(cached_arrays(path, lambda: trained.append(1) or train(), accept=accept))
            self.trained_ = bool(trained)
        else:
            state = train()
        self.fit_seconds_ = float(state.pop(_FIT_SECONDS))
        self.state_ = state
        return self

    @staticmethod
    def _state_shapes(torch, n_classes):
        body, head = _network(torch, n_classes)
        return {**{f"body.{k}": v for k, v in body.state_dict().items()},
                **{f"head.{k}": v for k, v in head.state_dict().items()}}

    def _train(self, torch, images, codes, n_classes):
        n = len(images)
        with _deterministic(torch, self.n_threads):
            torch.manual_seed(int(self.seed))
            body, head = _network(torch, n_classes)
            params = list(body.parameters()) + list(head.parameters())
            optimizer = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.weight_decay)
            loss_fn = torch.nn.CrossEntropyLoss()
            rng = np.random.default_rng(int(self.seed))
            X_all, y_all = torch.from_numpy(images), torch.from_numpy(codes)
            body.train()
            head.train()
            n_batches = int(self.epochs) * -(-n // int(self.batch_size))
            with progress_bar(n_batches, desc="training the convolutional net", unit="batch") as bar:
                for _ in range(int(self.epochs)):
                    order = torch.from_numpy(rng.permutation(n))
                    for start in range(0, n, int(self.batch_size)):
                        batch = order[start:start + int(self.batch_size)]
                        optimizer.zero_grad()
                        loss = loss_fn(head(body(X_all[batch])), y_all[batch])
                        loss.backward()
                        optimizer.step()
                        bar.update()
        state = {**{f"body.{k}": v for k, v in body.state_dict().items()},
                 **{f"head.{k}": v for k, v in head.state_dict().items()}}
        return {k: v.detach().numpy().astype(np.float32, copy=True) for k, v in state.items()}

    def _check_fitted(self):
        if not hasattr(self, "state_"):
            raise ValueError("this ConvNetClassifier is not fitted yet; call fit(X, y) first.")

    def _loaded(self, torch):
        self._check_fitted()
        body, head = _network(torch, len(self.classes_))
        body.load_state_dict({k[5:]: torch.from_numpy(v) for k, v in self.state_.items() if k.startswith("body.")})
        head.load_state_dict({k[5:]: torch.from_numpy(v) for k, v in self.state_.items() if k.startswith("head.")})
        body.eval()
        head.eval()
        return body, head

    def _forward(self, X, logits):
        torch = _torch()
        images = _images(X)
        body, head = self._loaded(torch)
        out = []
        with _deterministic(torch, self.n_threads), torch.no_grad():
            for start in range(0, len(images), _BATCH_PREDICT):
                h = body(torch.from_numpy(images[start:start + _BATCH_PREDICT]))
                out.append((head(h) if logits else h).numpy())
        width = len(self.classes_) if logits else _FEATURES
        return np.concatenate(out) if out else np.empty((0, width), np.float32)

    def decision_function(self, X):
        """The logits, shape (n, n_classes), float32."""
        return self._forward(X, logits=True)

    def predict_proba(self, X):
        """Softmax of the logits, shape (n, n_classes)."""
        z = self.decision_function(X).astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The class with the largest logit (ties to the first class)."""
        self._check_fitted()
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def features(self, X):
        """The 128 learned features of each digit (the penultimate layer, after ReLU), float32: for k-NN
        on learned features."""
        return self._forward(X, logits=False)


def fit_convnet(X, y, **params):
    """A :class:`ConvNetClassifier` with ``params``, trained on ``X``, ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from mnist_knn.analysis import convnet
    >>> X = np.zeros((20, 28, 28), np.uint8); X[10:, 10:18, 10:18] = 255
    >>> y = np.repeat([0, 1], 10)
    >>> net = convnet.fit_convnet(X, y, epochs=3, batch_size=5, learning_rate=0.01)  # doctest: +SKIP
    >>> convnet.convnet_predict(net, X).tolist() == y.tolist()  # doctest: +SKIP
    True
    """
    return ConvNetClassifier(**params).fit(X, y)


def convnet_predict(model, X):
    """``model.predict(X)``: the predicted class of each digit."""
    return model.predict(X)


def convnet_features(model, X):
    """``model.features(X)``: the learned 128-dimensional features of each digit."""
    return model.features(X)
