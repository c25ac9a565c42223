"""Analyses of the published study designs that xltstats serves end to end.

One package per study kind; each has plain functions on DataFrames / arrays and a CLI where a user
needs one:

* :mod:`xltstats.studies.cka`: linear / RBF / debiased CKA in numpy, disjoint batches, sentence
  bootstrap, embedding mingling (Muller et al. 2021; Lim et al. 2024);
* :mod:`xltstats.studies.multisource`: source-set selection heuristics, ranks with bootstrap
  intervals and permutation p-values, the set-size curve (Lim et al. 2024);
* :mod:`xltstats.studies.reinit`: drops after layer re-initialisation and their mixed model;
* :mod:`xltstats.studies.influence`: transfer-language influence and negative interference (influence
  matrix with Holm-corrected cells, receiver/donor categories, crossed mixed model on pair features,
  neg_inf's result lines; Faisal & Anastasopoulos 2024);
* :mod:`xltstats.studies.arithmetic`: language arithmetic (lambda curves, validation-only selection,
  gains with a paired bootstrap, the ``*_results.json`` files; Klimaszewski et al. 2025).

Nothing here imports torch.
"""
