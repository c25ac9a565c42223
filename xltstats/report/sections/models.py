"""The models: OLS and mixed coefficients, feature groups, variance components, residuals."""
from __future__ import annotations

from ._base import *  # noqa: F401,F403  (the helpers every section uses)
from ._base import ReportBase
from ..labels import readable


class ModelSections(ReportBase):
    def _coefficients(self, name: str) -> pd.DataFrame:
        relative = f"tables/{name}.csv"
        table = self.read_table(relative)
        if "effect" in table.columns:  # mixed-model tables also list variance parameters
            table = table[table["effect"].astype(str) == "fixed"].reset_index(drop=True)
            table = table.drop(columns=[c for c in ("effect", "group") if c in table.columns])
        term = find_column(table, TERM, required=True, what="term", file=relative)
        estimate = find_column(table, ESTIMATE, required=True, what="estimate", file=relative)
        low = find_column(table, CI_LOW)
        high = find_column(table, CI_HIGH)
        coefs = pd.DataFrame({"term": table[term].astype(str), "estimate": table[estimate].astype(float)})
        if low is not None and high is not None:
            coefs["low"] = table[low].astype(float)
            coefs["high"] = table[high].astype(float)
        else:
            se = find_column(table, STD_ERROR, required=True, what="interval or standard error", file=relative)
            coefs["low"] = coefs["estimate"] - 1.959964 * table[se].astype(float)
            coefs["high"] = coefs["estimate"] + 1.959964 * table[se].astype(float)
        for extra in ("task", "model", "group"):
            if extra in table.columns and table[extra].nunique() > 1:
                coefs[extra] = table[extra].astype(str)
        return coefs, table

    def feature_sds(self, terms) -> dict[str, float]:
        """Each term's SD (ddof 1) in the rows the models were fitted on: the rows of ``results.csv``
        with a score and every term that is a column (as the fit's ``complete`` rows)."""
        try:
            results = self.results
        except SectionUnavailable:
            return {}
        columns = [t for t in terms if t in results.columns and pd.api.types.is_numeric_dtype(results[t])]
        if not columns:
            return {}
        rows = results.dropna(subset=[*columns, *(["score"] if "score" in results.columns else [])])
        return {c: float(rows[c].std(ddof=1)) for c in columns if len(rows) > 1}

    def _per_sd(self, name: str) -> tuple[pd.DataFrame, list[str]]:
        """The coefficients of ``tables/<name>.csv`` (intercept left out) in score points per SD of
        their feature, whatever scale the model was fitted on; and the terms that could not be put
        on that scale (not a column of ``results.csv``: an interaction, a factor level)."""
        coefs, _table = self._coefficients(name)
        shown = coefs[~coefs["term"].str.lower().isin(["intercept", "(intercept)", "const"])].copy()
        if name == "coef_ols" and self.fit_config.ols.standardise:
            return shown, []
        sds = self.feature_sds(list(shown["term"]))
        left_out = [t for t in shown["term"] if not (np.isfinite(sds.get(t, np.nan)) and sds.get(t, 0) > 0)]
        shown = shown[~shown["term"].isin(left_out)].copy()
        scale = shown["term"].map(sds).astype(float)
        for column in ("estimate", "low", "high"):
            shown[column] = shown[column] * scale
        return shown, left_out

    @_guard
    def coefficient_section(self, name: str, label: str) -> str:
        coefs, table = self._coefficients(name)
        if coefs["term"].str.lower().isin(["intercept", "(intercept)", "const"]).all():
            raise SectionUnavailable(f"`tables/{name}.csv` has only an intercept")
        shown, left_out = self._per_sd(name)
        group = next((c for c in ("task", "model", "group") if c in shown.columns), None)
        compared = ""
        logit = name == "coef_mixed" and self.fit_config.mixed.scale == "logit"  # not on OLS's scale
        if name == "coef_mixed" and group is None and not logit and (self.fit_dir / "tables" / "coef_ols.csv").is_file():
            # the OLS estimates beside the mixed ones, both per SD of the feature: one scale for both
            try:
                ols, _ = self._per_sd("coef_ols")
            except SectionUnavailable:
                ols = None
            if ols is not None and "task" not in ols.columns and "model" not in ols.columns:
                shown = pd.concat([shown.assign(estimator="mixed"),
                                   ols[ols["term"].isin(shown["term"])].assign(estimator="OLS")], ignore_index=True)
                group, compared = "estimator", " beside the OLS estimates"
        if shown.empty:
            raise SectionUnavailable(f"no coefficient of `tables/{name}.csv` is a feature column of `results.csv`")
        shown = shown.assign(term=shown["term"].map(readable))
        xlabel = (f"coefficient (logit of the place in the {self.metric} range, per SD of feature)" if logit else
                  f"coefficient ({self.metric} points per SD of feature)")
        fig = F.coefficient_plot(shown, title=f"{label} coefficients with 95% intervals", group=group,
                                 xlabel=xlabel)
        unscaled = (f" Left out (not a feature column, so without an SD): {', '.join(md_code(t) for t in left_out)}."
                    if left_out else "")
        units = ("on the logit scale of the score's place in its range (`mixed.scale: logit`), per standard "
                 "deviation of the feature in the rows the models use (not comparable with the OLS points; "
                 if logit else "in score points per standard deviation of the feature in the rows the models use "
                 "(the same scale for the OLS and the mixed model; ")
        out = [self.figure(fig, f"coefficients_{name}",
                           f"{label} coefficients{compared} and 95% confidence intervals, {units}intercept omitted; "
                           f"the table below is on the scale the model was fitted on).{unscaled}")]
        caption = f"{label} coefficients (`tables/{name}.csv`)."
        if "df" in table.columns and "p_value" in table.columns and name == "coef_mixed":
            kr = getattr(self.fit_config.mixed, "ddf", "satterthwaite") == "kenward-roger"
            tests = (" `p_value`: t tests on Kenward-Roger degrees of freedom (`df`), as pbkrtest's, with "
                     "`std_error` and `statistic` from its adjusted covariance; " if kr else
                     " `p_value`: t tests on Satterthwaite's degrees of freedom (`df`), as lmerTest's; ")
            caption += (tests + "intervals: `conf_low`/`conf_high` Wald (normal quantiles), as lme4's "
                        "`confint(method = \"Wald\")`" + (" (lme4's unadjusted standard errors)" if kr else "")
                        + ("; `conf_low_profile`/`conf_high_profile` profile likelihood (the ML deviance "
                           "profiled over each fixed effect), as lme4's `confint(method = \"profile\")`"
                           if "conf_low_profile" in table.columns else "") + ".")
        out.append(self.table(table, f"report_{name}", caption))
        return "\n".join(out)

    @_guard
    def group_comparison(self) -> str:
        out = []
        comparison = self.optional_table("tables/group_comparison.csv")
        if comparison is not None:
            out.append(self.table(comparison, "report_group_comparison",
                                  "Feature-group comparison (`tables/group_comparison.csv`)."))
        mixed = self.optional_table("tables/group_comparison_mixed.csv")
        if mixed is not None:
            atomic_write_text(self.tables_dir / "report_group_comparison_mixed.tex",
                              latex_table(mixed, label="tab:report-group-comparison-mixed"))
            compact = [c for c in ("group", "features", "n_dropped", "chisq", "df", "p_value", "aic_change",
                                   "r2_marginal_drop", "significant", "status") if c in mixed.columns]
            out.append(markdown_table(mixed[compact] if compact else mixed,
                                      caption="Feature groups in the mixed model: likelihood-ratio test of "
                                              "dropping each group (maximum likelihood), change in AIC and in "
                                              "marginal R² (`tables/group_comparison_mixed.csv`, with the "
                                              "reduced formulas).", label="report_group_comparison_mixed") + "\n")
        dominance = self.optional_table("tables/dominance.csv")
        if dominance is not None:
            label = find_column(dominance, ("group", "feature", "term", "predictor", "name"))
            numeric = [c for c in dominance.select_dtypes("number").columns if c != label]
            value = find_column(dominance, ("general_dominance", "dominance", "share", "r2", *numeric[:1]))
            if label is not None and value is not None:
                data = (dominance[[label, value]].dropna().astype({label: str, value: float})
                        .sort_values(value, ascending=False))
                fig = F.bar_plot(data, x=value, y=label, title="Dominance analysis",
                                 xlabel=f"{value} (share of R², unitless)", ylabel=label)
                out.append(self.figure(fig, "dominance", "General dominance of each feature group: its "
                                                         "average contribution to R²."))
            out.append(self.table(dominance, "report_dominance", "Dominance analysis (`tables/dominance.csv`)."))
        tests = self.optional_table("tables/group_tests.csv")
        if tests is not None:
            out.append(self.table(tests, "report_group_tests", "Paired bootstrap tests between feature groups "
                                                               "(`tables/group_tests.csv`)."))
        vif = self.optional_table("tables/vif.csv")
        if vif is not None:
            out.extend(_note("**Collinearity.** " + md_escape(_sentence(n))
                             + f" (@{table_id('report_vif')}).") for n in self.fit_notes("collinear features"))
            out.append(self.table(vif, "report_vif", "Variance inflation factors (`tables/vif.csv`): a feature "
                                                     "with VIF above 10 is flagged `collinear` (the other "
                                                     "features explain over 90% of its variance); `max_abs_r` "
                                                     "is its largest correlation with another feature; "
                                                     "`sign_flip`: its OLS coefficient has the opposite sign "
                                                     "of its correlation with the score."))
        if not out:
            raise SectionUnavailable("the fit folder has no `tables/group_comparison.csv`, "
                                     "`tables/dominance.csv` or `tables/vif.csv`")
        return "\n".join(out)

    @_guard
    def variance_components(self) -> str:
        table = self.read_table("tables/variance_components.csv")
        label = find_column(table, ("component", "group", "grp", "term", "name"), required=True,
                            what="component", file="tables/variance_components.csv")
        value = find_column(table, ("variance", "var", "vcov", "estimate"), required=True,
                            what="variance", file="tables/variance_components.csv")
        low, high = find_column(table, CI_LOW), find_column(table, CI_HIGH)
        columns = [label, value, *([low, high] if low and high else [])]
        data = (table[columns].dropna(subset=[label, value]).astype({c: float for c in columns if c != label})
                .astype({label: str}).reset_index(drop=True))
        fit_stats = self.optional_table("tables/mixed_fit.csv")
        fig = F.bar_plot(data, x=value, y=label, title="Variance components of the mixed model",
                         xlabel="variance (logit scale²)" if self.fit_config.mixed.scale == "logit"
                         else f"variance ({self.metric}²)", ylabel="component", low=low, high=high)
        interval = " with their confidence intervals" if low and high else ""
        return "\n".join([
            self.figure(fig, "variance_components", f"Estimated variance of the random effects and residual"
                                                    f"{interval}."),
            self.table(table, "report_variance_components", "Variance components."),
            *([] if fit_stats is None else [self.table(fit_stats, "report_mixed_fit",
                                                       "Mixed-model fit statistics (`tables/mixed_fit.csv`).")]),
        ])

    @_guard
    def residual_diagnostics(self) -> str:
        predictions = self.read_table("predictions.csv")
        observed = find_column(predictions, ("score", "observed", "y"), required=True, what="observed score",
                               file="predictions.csv")
        estimator = find_column(predictions, ESTIMATOR)
        predicted = find_column(predictions, PREDICTED)
        if predicted is not None:
            frame = pd.DataFrame({"fitted": predictions[predicted].astype(float),
                                  "observed": predictions[observed].astype(float)})
            if estimator is not None:
                frame["estimator"] = predictions[estimator].astype(str)
        else:  # wide layout: one prediction column per estimator, e.g. predicted_ols
            columns = _wide_prediction_columns(predictions)
            if not columns:
                raise SectionUnavailable("`predictions.csv` has no prediction column")
            frame = pd.concat([pd.DataFrame({"fitted": predictions[c].astype(float),
                                             "observed": predictions[observed].astype(float),
                                             "estimator": _estimator_label(c)}) for c in columns],
                              ignore_index=True)
            estimator = "estimator"
        frame["residual"] = frame["observed"] - frame["fitted"]
        frame = frame.dropna(subset=["fitted", "residual"])
        if len(frame) < 3:
            raise SectionUnavailable("fewer than three predictions")
        fig = F.residual_diagnostics(frame, estimator_column="estimator" if estimator else None,
                                     metric=self.metric)
        return self.figure(fig, "residual_diagnostics", "Residuals against fitted scores and normal QQ plots "
                                                        "of the residuals (`predictions.csv`).")
