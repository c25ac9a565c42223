"""The data: counts, languages, heatmaps, feature correlations and coverage."""
from __future__ import annotations

from ._base import *  # noqa: F401,F403  (the helpers every section uses)
from ._base import ReportBase


class DataSections(ReportBase):
    def overview(self) -> str:
        manifest = self.manifest
        dataset = manifest.get("dataset") or {}
        name = dataset.get("name") or (manifest.get("config") or {}).get("data") or "unknown"
        lines = [f"Dataset: **{md_escape(name)}**"
                 + (f" ({md_escape(dataset['title'])})" if dataset.get("title") else "") + "."]
        try:
            results = self.results
            lines.append(
                f"The results table has {len(results)} rows: {results['model'].nunique()} model(s), "
                f"{results['task'].nunique()} task(s), {results['source'].nunique()} source and "
                f"{results['target'].nunique()} target languages.")
        except (SectionUnavailable, KeyError):
            lines.append("The fit folder has no readable `results.csv`.")
        if not manifest:
            lines.append("There is no readable `manifest.json`, so the methods section is incomplete.")
        rows = self.fit_notes("the models use")
        if rows:
            lines.append(md_escape(_sentence(rows[0])) + ".")
        warnings = self.fit_notes(*WARNING_NOTES)
        text = "\n\n".join(lines) + "\n"
        if warnings:
            where = {"collinear features": table_id("report_vif"), "cross-validation failed": table_id("report_cv")}
            text += "\n" + _note("**Read with care.** " + " ".join(
                md_escape(_sentence(w)) + f" (@{where[next(k for k in where if w.startswith(k))]})."
                for w in warnings))
        return text

    @_guard
    def data_summary(self) -> str:
        results = self.results
        needed = ["model", "task", "source", "target", "score"]
        missing = [c for c in needed if c not in results.columns]
        if missing:
            raise SectionUnavailable(f"`results.csv` lacks column(s) {', '.join(missing)}")
        group = results.groupby(["task", "model"], sort=True)
        counts = pd.DataFrame({
            "rows": group.size(),
            "sources": group["source"].nunique(),
            "targets": group["target"].nunique(),
            "pairs": group.apply(lambda g: len(g[["source", "target"]].drop_duplicates()), include_groups=False),
            "mean score": group["score"].mean(),
        }).reset_index()
        if "metric" in results:
            counts["metric"] = group["metric"].agg(lambda s: "/".join(sorted(set(map(str, s))))).to_numpy()
        if "n_target_examples" in results:
            counts["target-example budgets"] = group["n_target_examples"].agg(
                lambda s: ", ".join(str(int(v)) for v in sorted(set(s.dropna())))).to_numpy()
        out = [self.table(counts, "report_data_counts", "Rows, languages and scores per task and model.")]
        sources = results["source"].astype(str).value_counts()
        targets = results["target"].astype(str).value_counts()
        codes = sorted(set(sources.index) | set(targets.index))
        languages = pd.DataFrame({
            "code": codes,
            "language": [language_label(c) for c in codes],
            "rows as source": [int(sources.get(c, 0)) for c in codes],
            "rows as target": [int(targets.get(c, 0)) for c in codes],
        })
        atomic_write_text(self.tables_dir / "report_languages.tex",
                          latex_table(languages,
                                      caption="Languages of the data: rows as source and as target",
                                      label="tab:report-languages"))
        for role, counts in (("Source", sources), ("Target", targets)):
            names = ", ".join(f"{language_label(c)} ({c})" for c in sorted(counts.index))
            out.append(f"**{role} languages ({len(counts)}):** {names}.\n")
        multi = self._multi_source_summary(results)
        if multi:
            out.append(multi)
        return "\n".join(out)

    def _multi_source_summary(self, results: pd.DataFrame) -> str:
        """One paragraph on the multi-source runs (``source`` = ``mul``, ``source_languages`` JSON)."""
        rows = results[results["source"].astype(str) == "mul"]
        if rows.empty:
            return ""
        text = f"**Multi-source runs:** {len(rows)} rows train on several source languages at once (`mul`)"
        if "source_languages" in rows.columns:
            mixes = []
            from xltstats.results import parse_source_languages

            for value in rows["source_languages"].dropna().astype(str).unique():
                mixes.append(parse_source_languages(value, file=self.fit_dir / "results.csv"))
            if mixes:
                languages = sorted({code for mix in mixes for code in mix})
                sizes = [len(mix) for mix in mixes]
                names = ", ".join(f"{language_label(c)} ({c})" for c in languages)
                text += (f", in {len(mixes)} distinct mixtures of {min(sizes)}–{max(sizes)} languages drawn from "
                         f"{len(languages)}: {names}")
        return text + (". They have no single source: their heatmaps below show each language's runs, the "
                       "mean score of the mixtures that include it.\n")

    @staticmethod
    def _by_family(matrix: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
        """Rows and columns labelled by language name (with the code where two names are the same),
        ordered by language family (URIEL's top-level Glottolog family, families in alphabetical
        order) and by name within a family; a language URIEL gives no family (isolates, unclassified,
        codes URIEL lacks) goes last, under :data:`UNKNOWN_FAMILY`.  Returns the matrix and the family
        of each row and column, in order."""
        def labels(codes):
            names = [language_label(c) for c in codes]
            return [f"{n} ({c})" if names.count(n) > 1 else n for n, c in zip(names, codes)]

        def order(codes):
            keyed = sorted(zip(codes, labels(codes)), key=lambda cl: (
                _family_key(language_family_name(cl[0])), cl[1].casefold()))
            return [c for c, _ in keyed], [lab for _, lab in keyed], [
                language_family_name(c) or UNKNOWN_FAMILY for c, _ in keyed]

        rows, row_labels, row_families = order(list(matrix.index))
        cols, col_labels, col_families = order(list(matrix.columns))
        matrix = matrix.loc[rows, cols].copy()
        matrix.index, matrix.columns = row_labels, col_labels
        return matrix, row_families, col_families

    def _multi_source_matrix(self, part: pd.DataFrame) -> pd.DataFrame | None:
        """Multi-source runs as source (in the mixture) x target: the mean score of the runs whose
        training mixture includes the row's language."""
        if "source_languages" not in part.columns:
            return None
        from xltstats.results import parse_source_languages

        mixtures = {value: sorted(parse_source_languages(value, file=self.fit_dir / "results.csv"))
                    for value in part["source_languages"].dropna().astype(str).unique()}
        rows = [(code, target, score) for value, target, score in
                zip(part["source_languages"].astype(str), part["target"], part["score"])
                if value in mixtures for code in mixtures[value]]
        if not rows:
            return None
        long = pd.DataFrame(rows, columns=["source", "target", "score"])
        return long.pivot_table(index="source", columns="target", values="score", aggfunc="mean")

    @_guard
    def transfer_heatmaps(self) -> str:
        results = self.results
        if not {"model", "task", "source", "target", "score"} <= set(results.columns):
            raise SectionUnavailable("`results.csv` lacks model/task/source/target/score columns")
        data = results
        if "n_target_examples" in data:
            # Each target at its own smallest budget: in some datasets (langrank-mt) the number of
            # target examples is a property of the target, so a global minimum would keep one target.
            smallest = data.groupby(["task", "model", "target"])["n_target_examples"].transform("min")
            data = data[data["n_target_examples"] == smallest]
        combos = sorted(data.groupby(["task", "model"]).groups)
        panels = []  # (task, model, kind, matrix, metric)
        for task, model in combos[:MAX_HEATMAPS]:
            part = data[(data["task"] == task) & (data["model"] == model)]
            metric = self.metric_label(sorted(set(map(str, part["metric"])))) if "metric" in part else "score"
            single = part[part["source"].astype(str) != "mul"]
            if not single.empty:
                matrix = single.pivot_table(index="source", columns="target", values="score", aggfunc="mean")
                panels.append((task, model, "scores", self._by_family(matrix), metric))
                if min(matrix.shape) >= 3:
                    panels.append((task, model, "residuals", self._by_family(F.pair_residuals(matrix)), metric))
            multi = self._multi_source_matrix(part[part["source"].astype(str) == "mul"])
            if multi is not None:
                panels.append((task, model, "multi-source", self._by_family(multi), metric))
        # one colour scale per metric for the scores, one symmetric one for the residuals
        scales = {}
        for _task, _model, kind, (matrix, _rows, _cols), metric in panels:
            key = (metric, kind == "residuals")
            finite = matrix.to_numpy(float)[np.isfinite(matrix.to_numpy(float))]
            if finite.size:
                low, high = scales.get(key, (np.inf, -np.inf))
                scales[key] = (min(low, float(finite.min())), max(high, float(finite.max())))
        out = []
        for task, model, kind, (matrix, row_families, col_families), metric in panels:
            low, high = scales.get((metric, kind == "residuals"), (None, None))
            if kind == "residuals" and low is not None:
                high = max(abs(low), abs(high)) or 1.0
                low = -high
            what = {"scores": "mean score over seeds", "residuals": "pair-specific transfer (residuals)",
                    "multi-source": "multi-source runs"}[kind]
            fig = F.transfer_heatmap(matrix, title=f"{task}, {model}: {what}", metric=metric, vmin=low, vmax=high,
                                     residual=kind == "residuals", row_groups=row_families, col_groups=col_families,
                                     higher_is_better=self.higher_is_better)
            name = f"heatmap_{_slug(task)}_{_slug(model)}" + {"scores": "", "residuals": "_residuals",
                                                               "multi-source": "_multisource"}[kind]
            scale = (f"one colour scale for all {md_escape(metric)} residual heatmaps, symmetric about 0"
                     if kind == "residuals" else
                     f"one colour scale for all {md_escape(metric)} heatmaps of this report, "
                     f"{_format_value(low)} to {_format_value(high)}")
            lead = {
                "scores": f"Transfer scores ({md_escape(metric)}) for {md_escape(task)} with {md_escape(model)}, "
                          "source language (rows) by target language (columns)",
                "residuals": f"Pair-specific transfer for {md_escape(task)} with {md_escape(model)}: each score "
                             "minus its additive fit (overall mean + source effect + target effect, least squares "
                             "over the observed pairs), so a cell shows how much better (red) or worse (blue) the "
                             "pair transfers than its source and target do on average",
                "multi-source": f"Multi-source runs for {md_escape(task)} with {md_escape(model)}: mean score "
                                f"({md_escape(metric)}) of the runs whose training mixture includes the row's "
                                "language, by target language (columns)",
            }[kind]
            scores_of = (f" (the scores are in @{figure_id(f'heatmap_{_slug(task)}_{_slug(model)}')})"
                         if kind == "residuals" else "")
            direction = "" if self.higher_is_better else (
                f"; lower {md_escape(metric)} is better, so the colours are reversed: "
                + ("red is still better than expected" if kind == "residuals" else "brighter cells are better"))
            out.append(self.figure(fig, name, f"{lead}{scores_of}; {FAMILY_ORDER}; {scale}{direction}."))
        if len(combos) > MAX_HEATMAPS:
            out.append(_note(f"{len(combos) - MAX_HEATMAPS} further task/model heatmaps were left out."))
        if not out:
            raise SectionUnavailable("no rows to plot")
        return "\n".join(out)

    @_guard
    def feature_correlations(self) -> str:
        """Correlations between the model's predictors (``manifest.json`` ``features_used``, read from
        ``results.csv``, one value per language pair), else between the columns of ``features.csv``."""
        used = [str(c) for c in self.manifest.get("features_used") or []]
        results = self.optional_table("results.csv")
        if used and results is not None and set(used) <= set(results.columns) \
                and {"source", "target"} <= set(results.columns):
            # Pair-level values: a pair repeated over seeds, models or budgets counts once.
            numeric = results.drop_duplicates(subset=["source", "target", *used])[used]
            numeric = numeric.apply(pd.to_numeric, errors="coerce")
            where = "the predictors of the models, over language pairs"
        else:
            features = self.read_table("features.csv")
            numeric = features.drop(columns=[c for c in ("source", "target") if c in features]).select_dtypes("number")
            # Bookkeeping columns (how much data a feature was computed from) are not features.
            numeric = numeric.loc[:, [c for c in numeric.columns
                                      if not str(c).endswith(("_coverage", "_units", "_n"))]]
            where = "the pair features of `features.csv`"
        numeric = numeric.loc[:, numeric.notna().sum() >= 3]
        numeric = numeric.loc[:, numeric.std(skipna=True) > 0]
        if numeric.shape[1] < 2:
            raise SectionUnavailable("fewer than two varying numeric features")
        corr = numeric.corr(method="pearson", min_periods=3)
        return self.figure(F.correlation_heatmap(corr), "feature_correlation",
                           f"Pearson correlation between {where} (pairwise-complete observations).")

    @_guard
    def feature_coverage(self) -> str:
        coverage = self.optional_table("feature_coverage.csv")
        if coverage is None:
            features = self.read_table("features.csv")
            columns = [c for c in features.columns if c not in ("source", "target")]
            coverage = pd.DataFrame({
                "feature": columns,
                "n_pairs": len(features),
                "n_missing": [int(features[c].isna().sum()) for c in columns],
            })
            coverage["coverage"] = 1 - coverage["n_missing"] / max(len(features), 1)
            caption = "Feature coverage computed from `features.csv` (no `feature_coverage.csv`)."
        else:
            caption = "Feature coverage: language pairs with a value for each feature."
        return self.table(coverage, "report_feature_coverage", caption)
