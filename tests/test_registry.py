"""The one Registry behind datasets, features and tasks."""
from __future__ import annotations

import pytest

from xltstats.errors import ConfigError
from xltstats.registry import Registry


def test_registry_lookup_order_and_unknown_names():
    things = Registry("study")
    things.register("influence", 1)

    @things.register("arithmetic")
    def arithmetic():
        return 2

    assert things.names() == ["influence", "arithmetic"] and "influence" in things and len(things) == 2
    assert things.get("arithmetic")() == 2
    with pytest.raises(ConfigError, match=r"unknown study 'influense'; did you mean 'influence'\?; "
                                          r"available: influence, arithmetic"):
        things.get("influense")
    with pytest.raises(ValueError, match="already registered"):
        things.register("influence", 3)


def test_lazy_registry_loads_once_on_first_lookup():
    calls = []
    lazy = Registry("task", loader=lambda: calls.append(1) or lazy.add("xnli", "x"))
    assert calls == []
    assert lazy.get("xnli") == "x" and lazy.names() == ["xnli"] and calls == [1]


def test_datasets_features_and_tasks_share_the_registry():
    from xltstats.datasets.loaders import DATASETS
    from xltstats.experiments.tasks import TASKS
    from xltstats.features.build import FEATURES

    assert DATASETS.names() == ["xpos", "langrank-pos", "langrank-dep", "langrank-el", "langrank-mt",
                                "proxylm-intent", "sumeval"]
    assert {"syntactic_distance", "word_overlap", "morphological_distance"} <= set(FEATURES.names())
    assert FEATURES.get("syntactic_distance") == "syntax"
    assert {"xnli", "udpos"} <= set(TASKS.names())
    for registry, name in ((DATASETS, "xpso"), (FEATURES, "syntactic_distanse"), (TASKS, "xnly")):
        with pytest.raises(ConfigError, match=f"unknown {registry.kind} '{name}'; did you mean .*available: "):
            registry.get(name)
