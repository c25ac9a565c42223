"""Few-shot curves, pooled curves and data demand."""
from __future__ import annotations

from ._base import *  # noqa: F401,F403  (the helpers every section uses)
from ._base import ReportBase


class FewshotSections(ReportBase):
    @_guard
    def fewshot_curves(self, max_lines: int = 8) -> str:
        relative = "tables/fewshot_curves.csv"
        if not (self.fit_dir / relative).is_file():
            try:
                budgets = self.results["n_target_examples"].nunique()
            except (SectionUnavailable, KeyError):
                budgets = None
            if budgets == 1:
                raise SectionUnavailable("few-shot curves were not fitted: every result in the data uses the "
                                         "same number of target-language examples")
        if (self.fit_dir / relative).is_file() and not (self.fit_dir / relative).read_text(encoding="utf-8").strip():
            raise SectionUnavailable("no few-shot curve could be fitted" + self._fewshot_status())
        table = self.read_table(relative)
        n = find_column(table, ("n", "n_target_examples", "n_target", "shots"), required=True,
                        what="number of target examples", file=relative)
        fitted = find_column(table, ("fit", "fitted", "predicted", "prediction"))
        observed = find_column(table, ("observed", "mean_score", "score"))
        if fitted is None and observed is None:
            raise SectionUnavailable(f"`{relative}` has neither fitted nor observed scores")
        keys = [c for c in ("task", "model", "source", "target") if c in table.columns]
        panel_keys = [c for c in keys if c in ("task", "model") and table[c].nunique() > 1]
        hue_keys = [c for c in keys if c in ("source", "target")]
        curves = pd.DataFrame({"n": table[n].astype(float)})
        curves["panel"] = table[panel_keys].astype(str).agg(", ".join, axis=1) if panel_keys else ""
        curves["hue"] = (table[hue_keys].astype(str).map(language_label).agg(" → ".join, axis=1)
                         if hue_keys else "")
        curves["fit"] = table[fitted].astype(float) if fitted else np.nan
        for bound, names in (("lower", CI_LOW), ("upper", CI_HIGH)):
            column = find_column(table, names)
            curves[bound] = table[column].astype(float) if column else np.nan
        if observed:
            curves["observed"] = table[observed].astype(float)
            points = curves.dropna(subset=["observed"])
        else:
            points = self._observed_means(keys, panel_keys, hue_keys)
        # Too many lines make a panel unreadable: keep the first curves of each panel in sorted order.
        shown = set()
        for panel, part in curves.groupby("panel", sort=True):
            shown |= {(panel, hue) for hue in sorted(part["hue"].unique())[:max_lines]}
        all_curves = set(zip(curves["panel"], curves["hue"]))
        left_out = len(all_curves - shown)
        curves = curves[[key in shown for key in zip(curves["panel"], curves["hue"])]]
        if points is not None:
            points = points[[key in shown for key in zip(points["panel"], points["hue"])]]
        fig = F.fewshot_plot(curves, points, metric=self.metric, panel_metrics=self._panel_metrics(panel_keys))
        caption = ("Score against the number of target-language training examples: the fitted curve "
                   "$a + b \\log(1 + n)$ with its 95% band, and observed mean scores (points).")
        out = [self.figure(fig, "fewshot_curves", caption)]
        if left_out > 0:
            out.append(_note(f"The plot shows at most {max_lines} curves per panel; "
                             f"{left_out} more are in `{relative}`."))
        params = self.optional_table("tables/fewshot_params.csv")
        if params is not None:
            atomic_write_text(self.tables_dir / "report_fewshot_params.tex",
                              latex_table(params, label="tab:report-fewshot-params"))
            shown_params, note = _fitted_rows(params, ("n_needed", "b"))
            compact = [c for c in ("model", "task", "source", "target", "n_obs", "n_sizes", "max_n", "zero_shot",
                                   "b", "b_low", "b_high", "r2", "reference_score", "status")
                       if c in shown_params.columns]
            out.append(markdown_table(shown_params[compact] if compact else shown_params,
                                      caption="Few-shot curve parameters: zero-shot score $a$ and slope $b$ "
                                              "per unit of $\\log(1 + n)$ with its 95% interval; "
                                              f"all columns in `tables/fewshot_params.csv`.{note}",
                                      label="report_fewshot_params") + "\n")
        return "\n".join(out)

    @_guard
    def fewshot_pooled(self) -> str:
        """The pooled (random-effects) few-shot curve of each task and model, with its table."""
        table = self.optional_table("tables/fewshot_pooled.csv")
        curves = self.optional_table("tables/fewshot_pooled_curves.csv")
        if table is None and curves is None:
            return ""  # an older fit, or no few-shot data: the section above already says why
        out = []
        if curves is not None and {"n", "fit"} <= set(curves.columns):
            if "target" in curves.columns:
                curves = curves[curves["target"].astype(str) == "(population)"]
            panel_keys = [c for c in ("task",) if c in curves.columns]
            hue_keys = [c for c in ("model",) if c in curves.columns]
            frame = pd.DataFrame({"n": curves["n"].astype(float), "fit": curves["fit"].astype(float)})
            frame["panel"] = curves[panel_keys].astype(str).agg(", ".join, axis=1) if panel_keys else ""
            frame["hue"] = curves[hue_keys].astype(str).agg(", ".join, axis=1) if hue_keys else ""
            for bound, names in (("lower", CI_LOW), ("upper", CI_HIGH)):
                column = find_column(curves, names)
                frame[bound] = curves[column].astype(float) if column else np.nan
            if not frame.empty:
                fig = F.fewshot_plot(frame, None, metric=self.metric, panel_metrics=self._panel_metrics(panel_keys),
                                     title="Pooled few-shot curve")
                out.append(self.figure(fig, "fewshot_pooled_curves",
                                       "Pooled few-shot curves: the population curve $a + b \\log(1 + n)$ of a "
                                       "mixed model with random intercepts and slopes per target, one panel per "
                                       "task, with its 95% confidence band (`tables/fewshot_pooled_curves.csv`)."))
        if table is not None:
            atomic_write_text(self.tables_dir / "report_fewshot_pooled.tex",
                              latex_table(table, label="tab:report-fewshot-pooled"))
            compact = [c for c in table.columns if c in ("model", "task", "n_groups", "n_obs", "a", "zero_shot_low",
                                                        "zero_shot_high", "b", "b_low", "b_high", "status")
                       or str(c).startswith("n_for_")]
            out.append(markdown_table(table[compact] if compact else table,
                                      caption="Pooled few-shot curves: zero-shot score $a$, slope $b$ per unit of "
                                              "$\\log(1 + n)$ with 95% intervals, and the target-language examples "
                                              "needed for the given share of the reference score (`n_for_*`); all "
                                              "columns in `tables/fewshot_pooled.csv`.",
                                      label="report_fewshot_pooled") + "\n")
        return "\n".join(out)

    def _panel_metrics(self, panel_keys) -> dict[str, str]:
        """The metric of each few-shot panel (a task's own metric rather than all of them)."""
        try:
            results = self.results
        except SectionUnavailable:
            return {}
        if not panel_keys or "metric" not in results or not set(panel_keys) <= set(results.columns):
            return {}
        metrics = {}
        for key, part in results.groupby(panel_keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            metrics[", ".join(map(str, key))] = "/".join(sorted(set(map(str, part["metric"]))))
        return metrics

    def _fewshot_status(self) -> str:
        """Why curves are missing, from the ``status`` column of ``tables/fewshot_params.csv``."""
        params = self.optional_table("tables/fewshot_params.csv")
        if params is None or "status" not in params.columns:
            return ""
        counts = params["status"].astype(str).value_counts().sort_index()
        text = "; ".join(f"{count} curve(s) with status `{status}`" for status, count in counts.items())
        if "too_few_sizes" in counts.index and "n_sizes" in params.columns and params["n_sizes"].max() <= 1:
            text += (" — every target was observed at a single number of target-language examples, so "
                     "`n_target_examples` varies between targets but not within one")
        return f" (`tables/fewshot_params.csv`: {text})"

    def _observed_means(self, keys, panel_keys, hue_keys) -> pd.DataFrame | None:
        """Mean observed score per curve and number of target examples, from ``results.csv``."""
        try:
            results = self.results
        except SectionUnavailable:
            return None
        if "n_target_examples" not in results or not set(keys) <= set(results.columns):
            return None
        means = results.groupby([*keys, "n_target_examples"], as_index=False)["score"].mean()
        points = pd.DataFrame({"n": means["n_target_examples"].astype(float), "observed": means["score"]})
        points["panel"] = means[panel_keys].astype(str).agg(", ".join, axis=1) if panel_keys else ""
        points["hue"] = (means[hue_keys].astype(str).map(language_label).agg(" → ".join, axis=1)
                         if hue_keys else "")
        return points

    @_guard
    def data_demand(self) -> str:
        if not (self.fit_dir / "tables/data_demand.csv").is_file():
            try:
                if self.results["n_target_examples"].nunique() == 1:
                    raise SectionUnavailable("no data-demand estimates without few-shot curves")
            except KeyError:
                pass
        table = self.read_table("tables/data_demand.csv")
        needed = find_column(table, ("n_needed",))
        if needed is not None and table[needed].isna().all():
            raise SectionUnavailable("no data-demand estimate: no few-shot curve could be fitted"
                                     + self._fewshot_status())
        atomic_write_text(self.tables_dir / "report_data_demand.tex",
                          latex_table(table, label="tab:report-data-demand"))
        shown, note = _fitted_rows(table, ("n_needed",))
        return markdown_table(shown, caption="Data demand: target-language examples needed to reach the given "
                                             f"share of in-language performance.{note}",
                                     label="report_data_demand") + "\n"
