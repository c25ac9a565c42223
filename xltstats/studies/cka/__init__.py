"""CKA between representations, and how mixed languages are (numpy only; see :mod:`.core`)."""
from .core import (Kernel, center_gram, cka, cka_batches, cka_bootstrap, cka_from_grams,
                   feature_space_linear_cka, gram_linear, gram_rbf, hsic_biased, hsic_unbiased,
                   rbf_sigma2, squared_distances)
from .dumps import Dump, read_dump, write_entry
from .mingling import knn_language_purity, silhouette_languages, tsne_coordinates
from .tables import CKA_COLUMNS, MINGLING_COLUMNS, cka_table, mingling_table, parse_kernel

__all__ = ["Kernel", "center_gram", "cka", "cka_batches", "cka_bootstrap", "cka_from_grams",
           "feature_space_linear_cka", "gram_linear", "gram_rbf", "hsic_biased", "hsic_unbiased",
           "rbf_sigma2", "squared_distances", "Dump", "read_dump", "write_entry", "knn_language_purity",
           "silhouette_languages", "tsne_coordinates", "CKA_COLUMNS", "MINGLING_COLUMNS", "cka_table",
           "mingling_table", "parse_kernel"]
