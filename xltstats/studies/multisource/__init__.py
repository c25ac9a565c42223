"""Multi-source training: source sets, budgets, selection heuristics and their evaluation."""
from .analysis import diversity_model, select, set_scores, set_size_model
from .heuristics import HEURISTICS, score_sets, token_vocabularies, uriel_vectors
from .sets import canonical, combinations, parse_sources, prefixes, set_name, split_budget

__all__ = ["diversity_model", "select", "set_scores", "set_size_model", "HEURISTICS", "score_sets",
           "token_vocabularies", "uriel_vectors", "canonical", "combinations", "parse_sources", "prefixes",
           "set_name", "split_budget"]
