"""CKA: invariances, Gram == feature form, agreement with values written from the formulas."""
import itertools
import json

import numpy as np
import pytest

from xltstats.errors import InputError
from xltstats.studies.cka import (Kernel, cka, cka_batches, cka_bootstrap, feature_space_linear_cka,
                                  knn_language_purity, read_dump, write_entry)


# ---- references written from the definitions, element by element (no vectorised code) ----------
def _ref_gram_linear(X):
    n = len(X)
    return [[sum(a * b for a, b in zip(X[i], X[j])) for j in range(n)] for i in range(n)]


def _ref_sqdist(X):
    n = len(X)
    return [[sum((a - b) ** 2 for a, b in zip(X[i], X[j])) for j in range(n)] for i in range(n)]


def _median(values):
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def _ref_gram_rbf(X, rule, threshold=1.0):
    D = _ref_sqdist(X)
    flat = [d for row in D for d in row]
    if rule == "muller":
        s2 = _median([d for d in flat if d != 0])
    else:
        s2 = threshold ** 2 * _median(flat)
    return [[np.exp(-d / (2 * s2)) for d in row] for row in D]


def _ref_hsic_biased(K, L):
    # tr(K H L H) / (n-1)^2, H = I - 11'/n, written out entry by entry
    n = len(K)
    H = [[(1.0 if i == j else 0.0) - 1.0 / n for j in range(n)] for i in range(n)]

    def mm(A, B):
        return [[sum(A[i][k] * B[k][j] for k in range(n)) for j in range(n)] for i in range(n)]

    M = mm(mm(mm(K, H), L), H)
    return sum(M[i][i] for i in range(n)) / (n - 1) ** 2


def _ref_hsic_unbiased(K, L):
    # the U-statistic of Song et al. (2012): mean over distinct ordered (i, j, q, r) of
    # k_ij l_ij + k_ij l_qr - 2 k_ij l_iq
    n = len(K)
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += K[i][j] * L[i][j] + K[i][j] * L[q][r] - 2 * K[i][j] * L[i][q]
        count += 1
    return total / count


def _ref_cka(K, L, hsic):
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(9, 5))
    Y = X @ rng.normal(size=(5, 4)) + 0.5 * rng.normal(size=(9, 4))
    return X, Y


@pytest.mark.parametrize("kernel,bandwidth,threshold", [("linear", None, 1.0), ("rbf", "muller", 1.0),
                                                        ("rbf", "kornblith", 1.0), ("rbf", "kornblith", 0.5)])
@pytest.mark.parametrize("debiased", [False, True])
def test_matches_formulas(xy, kernel, bandwidth, threshold, debiased):
    X, Y = xy
    Xl, Yl = X.tolist(), Y.tolist()
    if kernel == "linear":
        K, L = _ref_gram_linear(Xl), _ref_gram_linear(Yl)
    else:
        K, L = _ref_gram_rbf(Xl, bandwidth, threshold), _ref_gram_rbf(Yl, bandwidth, threshold)
    if debiased:
        for M in (K, L):
            for i in range(len(M)):
                M[i][i] = 0.0  # the U-statistic never uses the diagonal; zeroing changes nothing
    expected = _ref_cka(K, L, _ref_hsic_unbiased if debiased else _ref_hsic_biased)
    got = cka(X, Y, kernel, bandwidth=bandwidth, threshold=threshold, debiased=debiased)
    assert got == pytest.approx(expected, abs=1e-12)


def test_golden_values_fixed_input():
    # integer inputs; values computed once from the element-wise references above
    X = np.array([[1, 0, 2], [0, 1, 1], [3, 1, 0], [1, 2, 2], [0, 0, 1], [2, 2, 0]], float)
    Y = np.array([[1, 1], [0, 2], [2, 0], [3, 1], [0, 0], [1, 3]], float)
    golden = {("linear", None, False): _ref_cka(_ref_gram_linear(X.tolist()), _ref_gram_linear(Y.tolist()),
                                                _ref_hsic_biased),
              ("rbf", "muller", False): _ref_cka(_ref_gram_rbf(X.tolist(), "muller"),
                                                 _ref_gram_rbf(Y.tolist(), "muller"), _ref_hsic_biased)}
    # the references themselves, pinned (a change in them would be caught here)
    assert golden[("linear", None, False)] == pytest.approx(0.3428860448, abs=1e-9)
    assert golden[("rbf", "muller", False)] == pytest.approx(0.4810007228, abs=1e-9)
    for (kind, bw, deb), value in golden.items():
        assert cka(X, Y, kind, bandwidth=bw, debiased=deb) == pytest.approx(value, abs=1e-12)


def test_invariances(xy):
    X, _ = xy
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    for kernel, bw in (("linear", None), ("rbf", "muller"), ("rbf", "kornblith")):
        assert cka(X, X, kernel, bandwidth=bw) == pytest.approx(1.0, abs=1e-12)
        assert cka(X, X @ Q, kernel, bandwidth=bw) == pytest.approx(1.0, abs=1e-10)
        assert cka(X, 3.7 * X, kernel, bandwidth=bw) == pytest.approx(1.0, abs=1e-10)
        assert cka(X, X + 5.0, kernel, bandwidth=bw) == pytest.approx(1.0, abs=1e-10)
    assert cka(X, X @ Q * 2.0, "linear", debiased=True) == pytest.approx(1.0, abs=1e-10)


def test_gram_form_equals_feature_form():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(40, 12)), rng.normal(size=(40, 30))
    assert feature_space_linear_cka(X, Y) == pytest.approx(cka(X, Y), abs=1e-12)
    assert feature_space_linear_cka(X, Y, debiased=True) == pytest.approx(cka(X, Y, debiased=True), abs=1e-12)


def test_biased_depends_on_n_debiased_near_zero():
    rng = np.random.default_rng(0)
    d = 768
    small = [cka(rng.normal(size=(25, d)), rng.normal(size=(25, d))) for _ in range(3)]
    large = cka(rng.normal(size=(400, d)), rng.normal(size=(400, d)))
    assert np.mean(small) > 0.9  # SPEC: ~0.97 at n = 25
    assert 0.6 < large < 0.72  # ~0.66 at n = 400
    deb = [cka(rng.normal(size=(100, d)), rng.normal(size=(100, d)), debiased=True) for _ in range(3)]
    assert abs(np.mean(deb)) < 0.02


def test_disjoint_batches_and_bootstrap():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(42, 6))
    Y = X + rng.normal(size=(42, 6))
    out = cka_batches(X, Y, 4)
    assert out["batch_size"] == 10 and out["n_used"] == 40 and out["n_left_out"] == 2
    expected = [cka(X[i * 10:(i + 1) * 10], Y[i * 10:(i + 1) * 10]) for i in range(4)]
    assert out["values"] == pytest.approx(expected, abs=1e-12)
    boot = cka_bootstrap(X, Y, n_boot=200, seed=1)
    assert boot["ci_low"] < boot["cka"] < boot["ci_high"] and boot["n_sentences"] == 42
    assert boot == cka_bootstrap(X, Y, n_boot=200, seed=1)  # seeded
    rbf = cka_bootstrap(X, Y, kernel=Kernel("rbf", "muller"), n_boot=50, seed=1)
    assert rbf["kernel"] == "rbf-muller" and rbf["ci_low"] <= rbf["ci_high"]


def test_bad_input():
    with pytest.raises(InputError, match="same items"):
        cka(np.zeros((5, 2)), np.zeros((6, 2)))
    with pytest.raises(InputError, match="bandwidth"):
        cka(np.ones((5, 2)), np.ones((5, 2)), "rbf", bandwidth="silverman")
    with pytest.raises(InputError, match="at least 4"):
        cka(np.eye(3), np.eye(3), debiased=True)


def test_knn_purity_separated_vs_mixed():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(30, 8))
    mixed = {"eng": base + 0.01 * rng.normal(size=base.shape), "fra": base + 0.01 * rng.normal(size=base.shape)}
    apart = {"eng": base + 20, "fra": base - 20}
    m, a = knn_language_purity(mixed, k=1), knn_language_purity(apart, k=5)
    assert a["knn_purity"] == 1.0
    assert m["knn_purity"] < 0.2  # the nearest neighbour is the translation
    assert m["chance"] == pytest.approx(29 / 59)


def test_dump_mismatched_sentence_counts(tmp_path):
    write_entry(tmp_path, checkpoint="pretrained", language="eng", hidden=np.zeros((3, 5, 4)),
                sentence_index=range(5), meta={"model": "m"})
    write_entry(tmp_path, checkpoint="pretrained", language="fra", hidden=np.zeros((3, 4, 4)),
                sentence_index=range(4), meta={"model": "m"})
    with pytest.raises(InputError, match="different numbers of sentences.*eng 5, fra 4"):
        read_dump(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["layer_convention"].startswith("layer 0 = embedding")


@pytest.mark.parametrize("kernel", [Kernel(), Kernel(debiased=True), Kernel("rbf", "muller"),
                                    Kernel("rbf", "kornblith", 0.5, True)])
def test_batched_resamples_equal_one_by_one(kernel):
    from xltstats.studies.cka.core import bootstrap_draws, cka_from_grams

    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(12, 4)), rng.normal(size=(12, 3))
    bx, by = kernel.base(X), kernel.base(Y)
    draws = bootstrap_draws(kernel, bx, by, 7, np.random.default_rng(4), chunk_entries=300)
    idx = np.sort(np.random.default_rng(4).integers(0, 12, size=(7, 12)), axis=1)
    one = [cka_from_grams(kernel.gram(bx[np.ix_(i, i)]), kernel.gram(by[np.ix_(i, i)]), kernel.debiased)
           for i in idx]
    assert draws == pytest.approx(one, abs=1e-12)


def test_cli_bad_dump_exits_2_naming_file(tmp_path, capsys):
    from xltstats.studies.cka.__main__ import main

    write_entry(tmp_path, checkpoint="pretrained", language="eng", hidden=np.zeros((3, 5, 4)),
                sentence_index=range(5), meta={"model": "m"})
    write_entry(tmp_path, checkpoint="pretrained", language="fra", hidden=np.zeros((3, 4, 4)),
                sentence_index=range(4), meta={"model": "m"})
    assert main(["--dump", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "different numbers of sentences" in err
    assert not (tmp_path / "out").exists()


def test_cli_tables(tmp_path):
    from xltstats.studies.cka.__main__ import main

    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 16, 6))
    for ckpt, noise in (("pretrained", 0.1), ("ft", 1.0)):
        for lang in ("eng", "fra", "deu"):
            write_entry(tmp_path, checkpoint=ckpt, language=lang, hidden=base + noise * rng.normal(size=base.shape),
                        sentence_index=range(16), meta={"model": "m"})
    assert main(["--dump", str(tmp_path), "--out", str(tmp_path / "out"), "--n-boot", "20",
                 "--kernel", "linear", "--kernel", "rbf-muller", "--layers", "0,2"]) == 0
    import pandas as pd

    t = pd.read_csv(tmp_path / "out" / "cka.csv")
    assert set(t["layer"]) == {0, 2} and set(t["comparison"]) == {"languages", "checkpoints"}
    lang = t[(t["comparison"] == "languages") & (t["kernel"] == "linear")].groupby("checkpoint")["cka"].mean()
    assert lang["pretrained"] > lang["ft"]  # less noise: more similar
    assert main(["--dump", str(tmp_path), "--out", str(tmp_path / "o2"), "--layers", "5"]) == 2
