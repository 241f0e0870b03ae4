"""Tests for mnist_knn.engine.estimator.KNNClassifier: scikit-learn's estimator checks, tie rules, weights, labels."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from mnist_knn.engine import vote
from mnist_knn.engine.estimator import KNNClassifier
from mnist_knn.engine.search import kneighbors, kneighbors_loo


@parametrize_with_checks([KNNClassifier(), KNNClassifier(n_neighbors=3, metric="manhattan", weights="distance")])
def test_sklearn_estimator_checks(estimator, check):
    """Every check of ``check_estimator``, one test each (the array-API check skips itself)."""
    check(estimator)


# --------------------------------------------------------------------------- tie rules by hand

# One query at 0 on a line; training points at these positions (distance = |position|):
#   index     0   1  2   3  4   5    6    7
#   position  1  -1  5  -5  6  50  -50  100
#   label     3   1  2   2  1   0    0    3
# With k = 8 every label has two votes, and the four deterministic rules all differ:
#   smallest     -> 0
#   nearest      -> 3 (index 0 comes before index 1 at the same distance)
#   reduce_k     -> k=7 drops a 3 (1, 2, 0 tie); k=6 and 5 drop the 0s (1, 2 tie); k=4 drops a 1 -> 2
#   distance_sum -> 3: 101, 1: 7, 2: 10, 0: 100 -> 1
LINE = np.array([1, -1, 5, -5, 6, 50, -50, 100], dtype=float)[:, None]
LINE_LABELS = np.array([3, 1, 2, 2, 1, 0, 0, 3])
QUERY = np.zeros((1, 1))


@pytest.mark.parametrize(("tie_break", "expected"), [
    ("smallest", 0), ("nearest", 3), ("reduce_k", 2), ("distance_sum", 1),
])
def test_each_tie_rule_through_the_estimator(tie_break, expected):
    clf = KNNClassifier(n_neighbors=8, tie_break=tie_break).fit(LINE, LINE_LABELS)
    assert clf.predict(QUERY).tolist() == [expected]


def test_random_tie_rule_picks_a_tied_label_reproducibly():
    picks = {KNNClassifier(8, tie_break="random", random_state=seed).fit(LINE, LINE_LABELS).predict(QUERY)[0]
             for seed in range(40)}
    assert picks == {0, 1, 2, 3}
    clf = KNNClassifier(8, tie_break="random", random_state=5).fit(LINE, LINE_LABELS)
    assert clf.predict(QUERY)[0] == clf.predict(QUERY)[0]


def test_distance_weights_through_the_estimator():
    """1/d: label 3 gets 1 + 1/100, label 1 gets 1 + 1/6 -> 1 wins; uniform votes tie and go to 0."""
    assert KNNClassifier(8, weights="distance").fit(LINE, LINE_LABELS).predict(QUERY).tolist() == [1]
    assert KNNClassifier(8, weights="uniform").fit(LINE, LINE_LABELS).predict(QUERY).tolist() == [0]
    clf = KNNClassifier(8, weights=lambda d: np.exp(-d)).fit(LINE, LINE_LABELS)  # a callable
    assert clf.predict(QUERY).tolist() == [1]  # the two nearest (labels 3 and 1) tie; then 1 + e^-6 beats 3


def test_zero_distance_neighbours_take_the_whole_distance_weighted_vote():
    X = np.array([[0.0], [0.0], [1.0], [1.0], [1.0]])
    clf = KNNClassifier(5, weights="distance").fit(X, [7, 8, 9, 9, 9])
    assert clf.predict([[0.0]]).tolist() == [7]  # 7 and 8 tie at weight 1 each; the 9s weigh 0
    assert_array_equal(clf.predict_proba([[0.0]]), [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("tie_break", vote.TIE_RULES)
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_estimator_equals_search_then_vote(tie_break, weights):
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 4, (200, 6)), rng.integers(0, 5, 200)  # integer data: many ties
    Q = rng.integers(0, 4, (50, 6))
    clf = KNNClassifier(7, metric="manhattan", weights=weights, tie_break=tie_break, random_state=3).fit(X, y)
    d, i = kneighbors(X, Q, 7, "manhattan")
    expected = vote.predict(d, i, y, 7, weights=weights, tie_break=tie_break, random_state=3)
    assert_array_equal(clf.predict(Q), expected)


# --------------------------------------------------------------------------- probabilities, labels, score


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_predict_proba_rows_sum_to_1_and_follow_classes(weights):
    rng = np.random.default_rng(1)
    X, Q = rng.normal(size=(100, 4)), rng.normal(size=(30, 4))
    y = rng.choice(np.array(["b", "a", "c"]), 100)
    clf = KNNClassifier(5, weights=weights).fit(X, y)
    P = clf.predict_proba(Q)
    assert P.shape == (30, 3)
    assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(clf.classes_[P.argmax(axis=1)], clf.predict(Q))  # no ties in continuous data
    sk = KNeighborsClassifier(5, weights=weights, algorithm="brute").fit(X, y)
    # Not bit for bit: scikit-learn's euclidean distances (|x|^2 - 2 x.y + |y|^2) differ from ours in the
    # last bits, and so do their 1/d weights (the vote itself is bit for bit: see test_vote.py).
    assert_allclose(P, sk.predict_proba(Q), rtol=1e-13)


def test_string_labels():
    X = np.array([[0.0], [1.0], [10.0], [11.0], [12.0]])
    y = np.array(["seven", "seven", "one", "one", "nine"])
    clf = KNNClassifier(2).fit(X, y)
    assert clf.classes_.tolist() == ["nine", "one", "seven"]
    assert clf.predict([[0.4], [10.6], [11.6]]).tolist() == ["seven", "one", "nine"]  # 11.6: one/nine tie -> "nine"
    assert clf.predict(X).dtype == y.dtype


def test_score_is_accuracy():
    X = np.arange(10.0)[:, None]
    y = np.array([0] * 5 + [1] * 5)
    clf = KNNClassifier(1).fit(X, y)
    assert clf.score(X, y) == 1.0
    assert clf.score(X, 1 - y) == 0.0
    assert clf.score(X[:4], [0, 0, 1, 1]) == 0.5


def test_kneighbors_without_x_leaves_each_sample_out():
    rng = np.random.default_rng(2)
    X = rng.integers(0, 3, (40, 5))
    X[10] = X[3]
    clf = KNNClassifier(4).fit(X, np.zeros(40, dtype=int))
    d, i = clf.kneighbors()
    assert not (i == np.arange(40)[:, None]).any()
    assert_array_equal(i, kneighbors_loo(X, 4)[1])
    assert clf.kneighbors(X[:3], n_neighbors=2, return_distance=False).shape == (3, 2)


def test_matches_sklearn_on_continuous_data():
    rng = np.random.default_rng(3)
    X, Q = rng.random((300, 8)), rng.random((80, 8))
    y = rng.integers(0, 10, 300)
    for metric, p in [("euclidean", 2), ("manhattan", 2), ("minkowski", 3), ("chebyshev", 2), ("cosine", 2)]:
        for k in (1, 4, 9):
            for weights in ("uniform", "distance"):
                ours = KNNClassifier(k, metric=metric, p=p, weights=weights).fit(X, y)
                sk = KNeighborsClassifier(k, metric=metric, p=p, weights=weights, algorithm="brute").fit(X, y)
                assert_array_equal(ours.predict(Q), sk.predict(Q), err_msg=f"{metric} k={k} {weights}")


# --------------------------------------------------------------------------- bad parameters and input

X3, Y3 = np.eye(3), np.array([0, 1, 2])


@pytest.mark.parametrize(("params", "message"), [
    ({"n_neighbors": 0}, r"n_neighbors must be an integer >= 1; got n_neighbors=0\."),
    ({"n_neighbors": 2.5}, r"n_neighbors must be an integer >= 1; got n_neighbors=2\.5\."),
    ({"n_neighbors": True}, r"n_neighbors must be an integer >= 1; got n_neighbors=True\."),
    ({"metric": "jaccard"}, r"metric must be one of \('euclidean', .*'cosine'\); got metric='jaccard'\."),
    ({"metric": "minkowski", "p": 0.5}, r"p must be a real number in \[1, inf\]; got p=0\.5\."),
    ({"p": 0.5}, r"p must be a real number in \[1, inf\]; got p=0\.5\."),  # checked for every metric
    ({"metric": "minkowski", "p": float("nan")}, r"p must be a real number in \[1, inf\]; got p=nan\."),
    ({"metric": "minkowski", "p": "3"}, r"p must be a real number in \[1, inf\]; got p='3'\."),
    ({"weights": "gaussian"},
     r"weights must be one of \('uniform', 'distance'\) or a callable; got weights='gaussian'\."),
    ({"weights": ["uniform"]}, r"weights must be one of .* or a callable; got weights=\['uniform'\]\."),
    ({"tie_break": "coin"}, r"tie_break must be one of \('smallest', .*'distance_sum'\); got tie_break='coin'\."),
    ({"tie_break": None}, r"tie_break must be one of \(.*\); got tie_break=None\."),
    ({"random_state": -1},
     r"random_state must be None, an integer >= 0 or a numpy Generator, RandomState, BitGenerator or "
     r"SeedSequence; got random_state=-1\."),
    ({"random_state": 1.5}, r"random_state must be None, .*; got random_state=1\.5\."),
])
def test_bad_parameters_raise_on_fit(params, message):
    with pytest.raises(ValueError, match=message):
        KNNClassifier(**params).fit(X3, Y3)


@pytest.mark.parametrize("name", sorted(KNNClassifier().get_params()))
def test_every_parameter_is_validated(name):
    """Every constructor parameter has a rule: a value of no valid kind raises, naming the parameter."""
    clf = KNNClassifier(1).set_params(**{name: object()})
    with pytest.raises(ValueError, match=rf"^{name} must be .+; got {name}=<object object at"):
        clf.fit(X3, Y3)


@pytest.mark.parametrize("params", [
    {"n_neighbors": np.int64(2)},
    {"metric": "minkowski", "p": np.inf},
    {"metric": "minkowski", "p": np.float32(1.5)},
    {"metric": "minkowski", "p": 1},
    {"weights": lambda d: 1 / (1 + d)},
    {"tie_break": "random", "random_state": np.int32(4)},
    {"tie_break": "random", "random_state": np.random.default_rng(0)},
    {"tie_break": "random", "random_state": np.random.RandomState(0)},
    {"tie_break": "random", "random_state": np.random.SeedSequence(0)},
])
def test_valid_parameters_of_every_kind_are_accepted(params):
    clf = KNNClassifier(**{"n_neighbors": 2, **params}).fit(X3, Y3)
    assert clf.predict(X3).shape == (3,)


def test_parameters_after_n_neighbors_are_keyword_only():
    with pytest.raises(TypeError, match="positional argument"):
        KNNClassifier(3, "manhattan")
    assert KNNClassifier(3, metric="manhattan").get_params()["metric"] == "manhattan"


def test_more_neighbours_than_training_samples_raises_on_predict():
    clf = KNNClassifier(5).fit(X3, Y3)
    message = r"n_neighbors must be in \[1, n_samples_fit=3\]; got n_neighbors=5: more neighbours than training samples"
    with pytest.raises(ValueError, match=message):
        clf.predict(X3)
    with pytest.raises(ValueError, match=message):
        clf.predict_proba(X3)
    with pytest.raises(ValueError, match=r"n_samples_fit=3\]; got n_neighbors=4"):
        KNNClassifier(1).fit(X3, Y3).kneighbors(X3, n_neighbors=4)
    assert KNNClassifier(3).fit(X3, Y3).predict(X3).shape == (3,)  # k = n_samples_fit is fine


def test_kneighbors_without_x_needs_fewer_neighbours_than_samples():
    """Without X each sample's neighbours exclude itself: at most n_samples_fit - 1."""
    with pytest.raises(ValueError, match=r"n_neighbors must be in \[1, n_samples_fit - 1 = 2\] when X is None.*"
                                         r"got n_neighbors=3\."):
        KNNClassifier(3).fit(X3, Y3).kneighbors()
    assert KNNClassifier(2).fit(X3, Y3).kneighbors()[1].shape == (3, 2)


@pytest.mark.parametrize("bad", [0, 2.5, True, "2"])
def test_bad_n_neighbors_argument_of_kneighbors(bad):
    clf = KNNClassifier(1).fit(X3, Y3)
    with pytest.raises(ValueError, match=rf"n_neighbors must be an integer >= 1; got n_neighbors={bad!r}\."):
        clf.kneighbors(X3, n_neighbors=bad)


def test_wrong_width_raises_on_predict():
    clf = KNNClassifier(1).fit(X3, Y3)
    with pytest.raises(ValueError, match="X has 2 features, but KNNClassifier is expecting 3 features"):
        clf.predict(np.ones((1, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinity_raises(bad):
    X = X3.copy()
    X[1, 1] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        KNNClassifier(1).fit(X, Y3)
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        KNNClassifier(1).fit(X3, Y3).predict(X)


def test_changed_parameters_after_fit_are_validated_on_predict():
    clf = KNNClassifier(1).fit(X3, Y3)
    clf.set_params(tie_break="alphabetical")
    with pytest.raises(ValueError, match="tie_break must be one of"):
        clf.predict(X3)
    clf.set_params(tie_break="smallest", metric="hamming")
    for method in (clf.predict, clf.predict_proba, clf.kneighbors):
        with pytest.raises(ValueError, match="metric must be one of"):
            method(X3)


# --------------------------------------------------------------------------- without scikit-learn

WITHOUT_SKLEARN = """
import pickle, sys
for name in ("sklearn", "sklearn.base", "sklearn.utils", "sklearn.utils.validation", "sklearn.utils.multiclass"):
    sys.modules[name] = None  # as if scikit-learn were not installed: importing it raises ImportError

import mnist_knn.engine.estimator  # the module itself imports
from mnist_knn import KNNClassifier  # and so does the lazy re-export

def import_error(make):
    try:
        make()
    except ImportError as error:
        return str(error)
    return "no ImportError"

print(import_error(KNNClassifier))
print(import_error(lambda: KNNClassifier(3, metric="manhattan")))
print(import_error(lambda: pickle.loads(sys.stdin.buffer.read())))  # a model pickled with scikit-learn
bare = object.__new__(KNNClassifier)  # past the constructor: fitting raises the same error
bare.__dict__.update(n_neighbors=1, metric="euclidean", p=2, weights="uniform", tie_break="smallest",
                     random_state=None)
print(import_error(lambda: bare.fit([[0.0], [1.0]], [0, 1])))
"""


def test_without_sklearn_the_module_imports_and_the_estimator_says_what_is_missing():
    fitted = pickle.dumps(KNNClassifier(1).fit(X3, Y3))
    run = subprocess.run([sys.executable, "-c", WITHOUT_SKLEARN], input=fitted, capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode()
    lines = run.stdout.decode().splitlines()
    assert len(lines) == 4
    for line in lines:
        assert line.startswith("KNNClassifier needs scikit-learn (pip install scikit-learn)"), line
        assert "mnist_knn.engine.kneighbors" in line and "import of sklearn.base halted" in line
