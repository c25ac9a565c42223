"""How mixed the languages' sentence embeddings are, layer by layer.

Two views of the same parallel sentences (item i is the same sentence in every language):

* CKA between languages (:mod:`.core`): high when two languages' representations of the parallel
  sentences have the same geometry;
* language separability: can a sentence's language be read off its neighbourhood?  ``knn_purity`` is
  the mean share of a sentence's k nearest neighbours (cosine, the sentence itself excluded, over all
  languages' sentences pooled) that are in its own language; ``chance`` is that share when
  languages are perfectly mixed, ``(n_l - 1) / (N - 1)``; ``knn_purity_excess`` = purity - chance
  (0 = mingled, ``1 - chance`` = fully separated).  ``silhouette`` is the silhouette coefficient of
  the language labels (cosine distance; sklearn), in [-1, 1].

Multi-source fine-tuning (Lim et al. 2024) is claimed to lower separability (more mingling) than
single-source fine-tuning under the same budget; these numbers let a user check that per layer.
"""
from __future__ import annotations

import numpy as np

from ...errors import InputError


def _pooled(embeddings: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if len(embeddings) < 2:
        raise InputError(f"language separability needs at least 2 languages, got {len(embeddings)}")
    langs = sorted(embeddings)
    arrays = [np.asarray(embeddings[lang], dtype=np.float64) for lang in langs]
    for lang, a in zip(langs, arrays):
        if a.ndim != 2 or a.shape[0] < 2:
            raise InputError(f"embeddings of {lang!r} must be (sentences x dims) with at least 2 sentences, "
                             f"got shape {a.shape}")
    if len({a.shape[1] for a in arrays}) != 1:
        raise InputError("embeddings of different languages have different dimensions: "
                         + ", ".join(f"{lang} {a.shape[1]}" for lang, a in zip(langs, arrays)))
    X = np.vstack(arrays)
    labels = np.concatenate([np.full(a.shape[0], i) for i, a in enumerate(arrays)])
    return X, labels, langs


def _unit(X: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return X / norm


def knn_language_purity(embeddings: dict[str, np.ndarray], k: int = 5) -> dict:
    """k-NN language purity of pooled sentence embeddings (module docstring)."""
    X, labels, langs = _pooled(embeddings)
    N = X.shape[0]
    if not 1 <= k < N:
        raise InputError(f"k must be between 1 and {N - 1}, got {k}")
    U = _unit(X)
    sim = U @ U.T
    np.fill_diagonal(sim, -np.inf)
    # k largest similarities per row; ties broken by index (stable) so results are reproducible
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    same = labels[order] == labels[:, None]
    purity = float(same.mean())
    counts = np.bincount(labels)
    chance = float(np.mean((counts[labels] - 1) / (N - 1)))
    per_language = {lang: {"knn_purity": float(same[labels == i].mean()),
                           "chance": float((counts[i] - 1) / (N - 1))} for i, lang in enumerate(langs)}
    return {"knn_purity": purity, "chance": chance, "knn_purity_excess": purity - chance, "k": k,
            "n_sentences": int(N), "n_languages": len(langs), "per_language": per_language}


def silhouette_languages(embeddings: dict[str, np.ndarray]) -> float:
    from sklearn.metrics import silhouette_score

    X, labels, _ = _pooled(embeddings)
    return float(silhouette_score(X, labels, metric="cosine"))


def tsne_coordinates(embeddings: dict[str, np.ndarray], *, seed: int = 0, perplexity: float = 30.0):
    """2-d t-SNE (sklearn, PCA init, cosine, fixed seed) of the pooled sentences: DataFrame x, y, language."""
    import pandas as pd
    from sklearn.manifold import TSNE

    X, labels, langs = _pooled(embeddings)
    perplexity = min(perplexity, (X.shape[0] - 1) / 3.0)
    method = "exact" if X.shape[0] <= 1500 else "barnes_hut"  # exact is faster for a few hundred points
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine",
              method=method).fit_transform(X)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "language": [langs[i] for i in labels]})
