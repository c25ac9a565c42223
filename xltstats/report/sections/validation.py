"""Cross-validation and the source-language recommendations."""
from __future__ import annotations

from ._base import *  # noqa: F401,F403  (the helpers every section uses)
from ._base import ReportBase


class ValidationSections(ReportBase):
    def cv_folds(self) -> dict[str, list[str]]:
        """Fold labels per cross-validation scheme, from ``tables/cv_comparison.csv`` (the folds each
        model was compared on; a fold label such as ``ara+ces+kor`` lists the languages held out together)."""
        comparison = self.optional_table("tables/cv_comparison.csv")
        if comparison is None or "scheme" not in comparison.columns:
            return {}
        lists = [c for c in comparison.columns if str(c).startswith("folds_") and str(c).endswith("_list")]
        folds: dict[str, set] = {}
        for _, row in comparison.iterrows():
            labels = folds.setdefault(str(row["scheme"]), set())
            for column in lists:
                if isinstance(row[column], str):
                    labels.update(label for label in row[column].split() if label not in ("–", "-"))
        return {scheme: sorted(labels) for scheme, labels in sorted(folds.items()) if labels}

    def cv_design(self) -> dict[str, str]:
        """One sentence per cross-validation scheme saying what each fold holds out.

        Read from the fold labels when the fit wrote them, else from the configuration
        (``cv.max_folds``, ``cv.k``) and the languages in ``results.csv``.
        """
        config = (self.manifest.get("config") or {}).get("cv") or {}
        folds = self.cv_folds()
        schemes = list(config.get("schemes") or folds)
        cv = self.optional_table("cv.csv")
        if cv is None:
            cv = self.optional_table("tables/cv.csv")
        column = None if cv is None else find_column(cv, SCHEME)
        if column is not None:  # a scheme the fit skipped (too few languages) is not described
            ran = set(cv[column].astype(str))
            schemes = [scheme for scheme in schemes if scheme in ran] or sorted(ran)
        seed = self.manifest.get("seed", (self.manifest.get("config") or {}).get("seed"))
        design = {}
        for scheme in schemes:
            role = {"leave-one-target-out": "target", "leave-one-source-out": "source"}.get(scheme)
            labels = folds.get(scheme)
            if role is None:
                k = len(labels) if labels else config.get("k", 5)
                design[scheme] = (f"rows dealt at random{'' if seed is None else f' (seed {seed})'} into "
                                  f"{k} folds, each held out once")
                continue
            if labels:
                languages = sorted({code for label in labels for code in label.split("+")})
                n_languages, n_folds = len(languages), len(labels)
            else:
                try:
                    n_languages = int(self.results[role].nunique())
                except (SectionUnavailable, KeyError):
                    design[scheme] = f"{role} languages held out"
                    continue
                max_folds = config.get("max_folds")
                n_folds = min(n_languages, int(max_folds)) if max_folds else n_languages
            if n_folds >= n_languages:
                design[scheme] = (f"each of the {n_languages} {role} languages held out in turn "
                                  f"({n_folds} folds)")
            else:
                size = n_languages / n_folds
                sizes = (f"{math.floor(size)}" if size == int(size)
                         else f"{math.floor(size)}–{math.ceil(size)}")
                design[scheme] = (f"the {n_languages} {role} languages dealt at random"
                                  f"{'' if seed is None else f' (seed {seed})'} into {n_folds} groups of {sizes}, "
                                  f"each group held out together ({n_folds} folds; a fold's label, e.g. "
                                  f"`{(labels or ['ara+ces+kor'])[0]}`, lists its held-out languages), so every "
                                  f"{role} is predicted by models that never saw it")
        return design

    @_guard
    def cross_validation(self) -> str:
        relative = "cv.csv" if (self.fit_dir / "cv.csv").is_file() else "tables/cv.csv"
        self.tables_read.add("tables/cv.csv")  # the fit writes the same table in both places
        table = self.read_table(relative)
        scheme = find_column(table, SCHEME)
        predictor = find_column(table, ESTIMATOR + ("model",), required=True, what="predictor", file=relative)
        numeric = [c for c in table.select_dtypes("number").columns if c not in ("fold", "seed", "k")]
        metric = find_column(table, ("rmse", "mae", "error", *numeric[:1]), required=True, what="error metric",
                             file=relative)
        keys = [c for c in (scheme, predictor) if c is not None]
        summary = table.groupby(keys, sort=True, as_index=False)[numeric].mean()
        if "failed" in table.columns:  # the fit's rule (pipeline.run.mark_failed_cv), shown beside the numbers
            marks = table.groupby(keys, sort=True, as_index=False).agg(
                failed=("failed", lambda v: bool(v.astype(str).str.lower().eq("true").any())),
                **({"failed_because": ("failed_because", lambda v: "; ".join(sorted({str(x) for x in v
                                                                                      if isinstance(x, str) and x})))}
                   if "failed_because" in table.columns else {}))
            summary = summary.merge(marks, on=keys, how="left")
            summary["failed"] = summary["failed"].map({True: "FAILED", False: ""})
        comparison = self.optional_table("tables/cv_comparison.csv")
        design = self.cv_design() if scheme else {}
        out = [_note("**Failed cross-validation.** " + md_escape(_sentence(n.removeprefix("cross-validation failed: ")))
                     + f" (@{table_id('report_cv')}).") for n in self.fit_notes("cross-validation failed")]
        if "failed" in table.columns:
            out.append("A model **fails** a scheme (`failed` below) when its held-out R² is below 0 (its "
                       "predictions are further from the held-out scores than their mean is) and it does not beat "
                       "the `mean` baseline: its coefficients and intervals then do not carry over to what the "
                       "scheme holds out.\n")
        if design:
            out.append("Each scheme splits the rows the models were fitted on into folds; every fold is "
                       "predicted by models fitted on the other folds:\n")
            out.extend(f"- **{name}**: {text}." for name, text in design.items())
            out.append("")
        plotted = summary.copy()
        if scheme:
            counts = {name: len(labels) for name, labels in self.cv_folds().items()}
            plotted[scheme] = [f"{value}\n({counts[value]} folds)" if value in counts else str(value)
                               for value in plotted[scheme].astype(str)]
        fig = F.bar_plot(plotted, x=scheme or predictor, y=metric, hue=predictor if scheme else None,
                         horizontal=False, title="Cross-validated prediction error",
                         xlabel="cross-validation scheme" if scheme else "predictor",
                         ylabel=f"{metric} ({self.metric}, lower is better)" if metric in ("rmse", "mae")
                         else metric)
        out.append(self.figure(fig, "cv_error", f"Cross-validated {metric} of each predictor against the "
                                                "baselines, per scheme (mean over folds)."))
        out.append(self.table(summary, "report_cv", f"Cross-validation, mean over folds (`{relative}`)."))
        if comparison is not None:
            # The per-fold label lists are long; the HTML shows the counts, the LaTeX and CSV keep them.
            lists = [c for c in comparison.columns if str(c).endswith("_list")]
            ordered = comparison[[c for c in ("scheme",) if c in comparison.columns]
                                 + [c for c in comparison.columns if c != "scheme"]]
            atomic_write_text(self.tables_dir / "report_cv_comparison.tex",
                              latex_table(ordered, label="tab:report-cv-comparison"))
            note = (" The lists of folds won and lost are in `tables/cv_comparison.csv`." if lists else "")
            out.append(markdown_table(ordered.drop(columns=lists),
                                      caption="Each model against the strongest baseline, fold by fold "
                                              f"(`tables/cv_comparison.csv`).{note}",
                                      label="report_cv_comparison") + "\n")
        return "\n".join(out)

    @_guard
    def recommendations(self, k: int = 3) -> str:
        if (self.manifest.get("config") or {}).get("pairs") == "unordered":
            raise SectionUnavailable("the pairs are unordered ('pairs: unordered' in the fit config): a score "
                                     "belongs to the two languages together, no language is a source for "
                                     "another, so there are no sources to recommend")
        ranking = self.optional_table("tables/ranking.csv")
        origin = "`tables/ranking.csv`"
        method = None
        higher = self.higher_is_better  # a lower-is-better metric: the lowest predicted score first
        if ranking is not None:
            source = find_column(ranking, SOURCE_COLUMN, required=True, what="source", file="tables/ranking.csv")
            rank = find_column(ranking, RANK)
            score = find_column(ranking, PREDICTED + ("score",))
            keys = [c for c in ("task", "model") if c in ranking.columns]
            method = self._best_ranker(ranking) if rank is None else None
            if method is not None:  # one <method>_rank / <method>_score pair per ranker
                rank, score = f"{method}_rank", (f"{method}_score" if f"{method}_score" in ranking else None)
                origin = f"`tables/ranking.csv` ({method} ranker)"
            if rank is None:
                if score is None:
                    raise SectionUnavailable("`tables/ranking.csv` has neither a rank nor a predicted score")
                ranking = ranking.sort_values([*keys, "target", score, source],
                                              ascending=[*[True] * len(keys), True, not higher, True])
                ranking["rank"] = ranking.groupby([*keys, "target"]).cumcount() + 1
                rank = "rank"
        else:
            predictions = self.read_table("predictions.csv")
            score = find_column(predictions, PREDICTED)
            source = "source"
            estimator = find_column(predictions, ESTIMATOR)
            wide = _wide_prediction_columns(predictions)
            if score is None and wide:
                labels = {_estimator_label(c): c for c in wide}
                choice = "mixed" if "mixed" in labels else sorted(labels)[0]
                score = labels[choice]
                origin = f"`predictions.csv` ({choice} predictions)"
            elif score is None:
                raise SectionUnavailable("`predictions.csv` has no prediction column")
            elif estimator is not None:
                preferred = predictions[estimator].astype(str)
                choice = "mixed" if (preferred == "mixed").any() else sorted(set(preferred))[0]
                predictions = predictions[preferred == choice]
                origin = f"`predictions.csv` ({choice} predictions)"
            else:
                origin = "`predictions.csv`"
            keys = [c for c in ("task", "model") if c in predictions.columns]
            candidates = predictions[predictions["source"].astype(str) != predictions["target"].astype(str)]
            ranking = candidates.groupby([*keys, "target", "source"], as_index=False)[score].mean()
            ranking = ranking.sort_values([*keys, "target", score, "source"],
                                          ascending=[*[True] * len(keys), True, not higher, True])
            ranking["rank"] = ranking.groupby([*keys, "target"]).cumcount() + 1
            rank = "rank"
        # Transfer from a language to itself is not a recommendation: rank the other sources only.
        ranking = ranking[ranking[source].astype(str) != ranking["target"].astype(str)].copy()
        ranking[rank] = ranking.groupby([*keys, "target"])[rank].rank(method="first")
        top = ranking[ranking[rank] <= k].sort_values([*keys, "target", rank])
        observed_best = {}
        if "observed" in ranking.columns and ranking["observed"].notna().any():
            best = ranking.dropna(subset=["observed"])
            best = best.loc[best.groupby([*keys, "target"])["observed"].agg("idxmax" if higher else "idxmin")]
            observed_best = {tuple(r[[*keys, "target"]]): r for _, r in best.iterrows()}
        intervals, interval_model = self._pair_intervals(keys)
        regression = method in (None, "mixed", "ols")  # a ranker whose score is a predicted score
        rows = []
        for group_key, part in top.groupby([*keys, "target"], sort=True):
            group_key = group_key if isinstance(group_key, tuple) else (group_key,)
            row = dict(zip(keys, group_key[:-1]))
            target = group_key[-1]
            row["target"] = f"{language_label(target)} ({target})"
            for position, (_, entry) in enumerate(part.iterrows(), start=1):
                label = f"{language_label(entry[source])} ({entry[source]})"
                interval = intervals.get((*group_key, entry[source]))
                if interval is not None:
                    label += ", " + " ".join([_format_value(interval[0]),
                                              f"[{_format_value(interval[1])}, {_format_value(interval[2])}]"])
                elif regression and score is not None and score in entry and pd.notna(entry[score]):
                    shown = float(entry[score])
                    if self.score_scale is not None:  # clipped to the metric's range
                        shown = float(self.score_scale.clip_values(shown))
                    label += f", {_format_value(shown)}"
                row[f"source {position}"] = label
            if observed_best:
                entry = observed_best.get(tuple(group_key))
                row["best observed source"] = ("–" if entry is None else
                                               f"{language_label(entry[source])} ({entry[source]}), "
                                               f"{_format_value(float(entry['observed']))}")
            rows.append(row)
        if not rows:
            raise SectionUnavailable(f"no ranked sources in {origin}")
        failed = self.failed_estimators("leave-one-target-out")
        used = method or (origin.split("(")[-1].split()[0] if "(" in origin else "")  # `mixed` of "(mixed predictions)"
        out = []
        if failed:
            trusted = ("" if used not in failed else
                       f" The recommendations below follow the {used} model's scores: do not rely on them.")
            out.append(_note(f"**Failed cross-validation.** {', '.join(md_code(f) for f in failed)} "
                             f"failed leave-one-target-out cross-validation (@{table_id('report_cv')}): "
                             f"{'its' if len(failed) == 1 else 'their'} predictions for a target left out of "
                             f"the fit are worse than that target's mean score.{trusted}"))
        shown_score = (f"after each name the {interval_model} model's predicted score ({self.metric}) with its 95% "
                       "prediction interval (`predictions.csv`; the model fitted on all rows)" if intervals else
                       f"after each name the ranker's predicted score ({self.metric})" if regression and score
                       else "the ranker's scores are unitless and not shown")
        clipped = ("" if self.score_scale is None or not self.score_scale.bounded else
                   f" Predicted scores and interval bounds are clipped to the range {self.score_scale.range_text()} "
                   f"of {md_escape(self.metric)}.")
        direction = "" if higher else f" Lower {md_escape(self.metric)} is better: the best source has the lowest score."
        out += [self.table(pd.DataFrame(rows), "report_recommendations",
                           f"Top {k} source languages per target other than the target itself, in the order of "
                           f"{origin}; {shown_score}. The best observed source also excludes the target."
                           f"{direction}{clipped}",
                           max_rows=500)]
        evaluation = self.optional_table("tables/ranking_ndcg.csv")
        if evaluation is not None:
            out.append(self.table(evaluation, "report_ranking_ndcg",
                                  "How well each ranker orders the sources (`tables/ranking_ndcg.csv`)."))
        return "\n".join(out)

    def _pair_intervals(self, keys: list[str]) -> tuple[dict, str]:
        """(``keys``..., target, source) -> (prediction, lower, upper) of the mixed model (else OLS)
        from ``predictions.csv``, averaged over the pair's rows (seeds, budgets); and the model's name."""
        predictions = self.optional_table("predictions.csv")
        if predictions is None:
            return {}, ""
        for model in ("mixed", "ols"):
            columns = [f"{model}_prediction", f"{model}_lower", f"{model}_upper"]
            if set(columns) <= set(predictions.columns) and all(k in predictions.columns for k in keys):
                means = predictions.groupby([*keys, "target", "source"], sort=True)[columns].mean()
                return ({(index if isinstance(index, tuple) else (index,)): tuple(map(float, values))
                         for index, values in zip(means.index, means.to_numpy()) if np.isfinite(values).all()},
                        "mixed" if model == "mixed" else "OLS")
        return {}, ""

    def failed_estimators(self, scheme: str) -> list[str]:
        """The estimators the fit marked as failing ``scheme`` (``failed`` in ``cv.csv``)."""
        cv = self.optional_table("cv.csv")
        if cv is None or not {"failed", "estimator", "scheme"} <= set(cv.columns):
            return []
        flagged = cv[(cv["scheme"].astype(str) == scheme) & cv["failed"].astype(str).str.lower().eq("true")]
        return sorted(set(flagged["estimator"].astype(str)))

    def _best_ranker(self, ranking: pd.DataFrame) -> str | None:
        """The ranker with the best mean NDCG (``tables/ranking_ndcg.csv``), else the first ``*_rank`` column."""
        methods = [str(c)[: -len("_rank")] for c in ranking.columns if str(c).endswith("_rank")]
        if not methods:
            return None
        evaluation = self.optional_table("tables/ranking_ndcg.csv")
        if evaluation is not None:
            method = find_column(evaluation, ("method", "ranker", "estimator"))
            ndcg = next((c for c in evaluation.columns if str(c).startswith("mean_ndcg")), None)
            if method is not None and ndcg is not None:
                scored = evaluation[evaluation[method].astype(str).isin(methods)]
                if not scored.empty:
                    best = scored.sort_values([ndcg, method], ascending=[False, True]).iloc[0]
                    return str(best[method])
        return sorted(methods)[0]

    def ranking_design(self) -> str:
        """How the source ranking was evaluated: which targets were held out together."""
        ranking = self.optional_table("tables/ranking.csv")
        if ranking is None or "target" not in ranking.columns:
            return ""
        config = (self.manifest.get("config") or {}).get("ranking") or {}
        k = config.get("k", 3)
        n_targets = int(ranking["target"].nunique())
        max_folds = config.get("max_folds")
        n_folds = min(n_targets, int(max_folds)) if max_folds else n_targets
        seed = self.manifest.get("seed", (self.manifest.get("config") or {}).get("seed"))
        held_out = ("each target held out in turn" if n_folds >= n_targets else
                    f"the {n_targets} targets dealt at random{'' if seed is None else f' (seed {seed})'} into "
                    f"{n_folds} groups, each group held out together")
        return (f"Every source language is scored for each target by rankers fitted without that target "
                f"({held_out}); rankings are compared with the observed order by NDCG@{k} (relevance as in "
                "LangRank: the best observed source of a target gets the most). The rankers are the regression "
                "models (ranking by predicted score), the source-mean baseline and a LightGBM LambdaRank model"
                + ("; with selection also LambdaRank with the mixed model's cross-fitted score as a feature, a "
                   "rank-average ensemble, and 'best': in each held-out fold, the ranker an inner cross-validation "
                   "on the training targets chose (LambdaRank unless another beats it by more than one standard "
                   "error; `tables/ranking_selection.csv`)" if config.get("select") else "")
                + "; the recommendations above follow the ranker with the best mean NDCG.")
