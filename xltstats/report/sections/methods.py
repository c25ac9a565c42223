"""Methods, the tables not shown above, and the closing line."""
from __future__ import annotations

from ._base import *  # noqa: F401,F403  (the helpers every section uses)
from ._base import ReportBase


class MethodsSections(ReportBase):
    def methods(self) -> str:
        manifest = self.manifest
        if not manifest:
            return _note("Not available: the fit folder has no readable `manifest.json`.")
        out = []
        argv = manifest.get("argv")
        if argv:
            command = "python -m " + " ".join(_shell_quote(str(a)) for a in argv)
            out.append(f"**Command.** The fit was produced by\n\n{md_code_block(command)}")
        seed = manifest.get("seed", (manifest.get("config") or {}).get("seed"))
        if seed is not None:
            out.append(f"**Seed.** All random steps used seed {md_escape(seed)}.\n")
        formulas = manifest.get("formulas") or {}
        config = manifest.get("config") or {}
        if formulas:
            standardised = self.fit_config.ols.standardise
            scale = ("standardised to mean 0 and SD 1, so a coefficient is the change in score per SD of "
                     "its feature" if standardised else "in their own units")
            out.append("**Models.** With $y_{st}$ the score of transfer from source $s$ to target $t$ and "
                       f"$x_{{k,st}}$ the pair features ({scale}), the OLS model is\n\n"
                       "$$y_{st} = \\beta_0 + \\sum_k \\beta_k x_{k,st} + \\varepsilon_{st}.$$\n")
            mixed_formula = formulas.get("mixed") if isinstance(formulas, dict) else None
            out.append(_mixed_model_text(str(mixed_formula)) if mixed_formula else "")
            if (self.fit_dir / "tables" / "fewshot_params.csv").is_file():
                out.append("Few-shot curves model the score as linear in $\\log(1 + n)$ for $n$ "
                           "target-language training examples.\n")
            out.append("The formulas used:\n")
            items = formulas.items() if isinstance(formulas, dict) else enumerate(formulas)
            for key, formula in items:
                out.append(f"- {md_escape(key)}: {md_code(formula)}")
            out.append("")
        design = self.cv_design()
        if design:
            estimators_seen = []
            cv = self.optional_table("cv.csv")
            if cv is not None:
                column = find_column(cv, ESTIMATOR)
                if column is not None:
                    estimators_seen = sorted(set(cv[column].astype(str)))
            baselines = [BASELINES[e] for e in estimators_seen if e in BASELINES]
            out.append("**Validation.** Out-of-sample error (RMSE, MAE, R², and coverage and width of the "
                       "95% prediction intervals) is estimated by cross-validation"
                       + (f" against the baselines: {'; '.join(baselines)}" if baselines else "") + ". Schemes:\n")
            out.extend(f"- {name}: {text}." for name, text in design.items())
            out.append("")
        ranking_design = self.ranking_design()
        if ranking_design:
            out.append(f"**Source ranking.** {ranking_design}\n")
        estimators = manifest.get("estimators")
        if estimators:
            out.append("**Estimators.**\n")
            items = estimators.items() if isinstance(estimators, dict) else enumerate(estimators)
            out.extend(f"- {md_escape(key)}: {md_escape(value)}" for key, value in items)
            out.append("")
        elif config:
            ols = config.get("ols") or {}
            mixed = config.get("mixed") or {}
            out.append(f"**Estimators.** OLS with {md_code(ols.get('cov_type', 'default'))} standard errors; mixed model "
                       f"fitted by {'REML' if mixed.get('reml', True) else 'maximum likelihood'}.\n")
        if config:
            import yaml

            out.append("**Configuration.**\n\n" + md_code_block(yaml.safe_dump(config, sort_keys=True), "yaml"))
        notes = manifest.get("notes") or []
        if notes:
            out.append("**Notes from the fit.**\n")
            out.extend(f"- {md_escape(note)}" for note in (notes if isinstance(notes, list) else [notes]))
            out.append("")
        inputs = manifest.get("inputs")
        if inputs:
            rows = (inputs.items() if isinstance(inputs, dict)
                    else [(i.get("path"), i.get("sha256")) for i in inputs if isinstance(i, dict)])
            frame = pd.DataFrame(sorted((str(p), str(h)) for p, h in rows), columns=["input", "sha256"])
            out.append(self.table(frame, "report_inputs", "Input files and their SHA-256 checksums."))
        versions = manifest.get("versions") or manifest.get("package_versions")
        if versions:
            frame = pd.DataFrame(sorted((str(k), str(v)) for k, v in versions.items()), columns=["package", "version"])
            out.append(self.table(frame, "report_versions", "Package versions.", max_rows=200))
        dataset = manifest.get("dataset") or {}
        citations = dataset.get("citation") or dataset.get("citations")
        if citations:
            if isinstance(citations, str):
                citations = [citations]
            out.append("**Data citation.** Please cite the dataset"
                       + (f" {md_escape(dataset.get('title'))}" if dataset.get("title") else "") + ":\n")
            for citation in citations:
                out.append(md_code_block(str(citation).strip(), "bibtex"))
        for key in ("origin", "url", "commit", "licence", "license"):
            if dataset.get(key):
                out.append(f"- {key}: {md_escape(dataset[key])}")
        out.append(_references_text(manifest))
        return "\n".join(out) + "\n"

    @_guard
    def other_tables(self, max_rows: int = 20) -> str:
        """Every ``tables/*.csv`` the sections above did not show."""
        if not self.tables_dir.is_dir():
            raise SectionUnavailable("the fit folder has no `tables/`")
        out = []
        for csv in sorted(self.tables_dir.glob("*.csv")):
            relative = f"tables/{csv.name}"
            if relative in self.tables_read:
                continue
            if not csv.read_text(encoding="utf-8").strip():
                out.append(f"**`{relative}`** is empty.\n")
                continue
            try:
                table = self.read_table(relative)
            except SectionUnavailable as exc:  # one unreadable table must not hide the others
                out.append(_note(f"Not available: {exc}"))
                continue
            out.append(f"**`{relative}`**\n\n" + markdown_table(table, max_rows=max_rows) + "\n")
        return "\n".join(out) if out else "Every table of the fit is shown above.\n"

    def closing(self) -> str:
        written = self.ensure_latex_tables()
        text = f"The report wrote {self.figure_count} figure(s) to `figures/` ({'PNG and SVG' if self.svg else 'PNG'})"
        text += " and LaTeX versions of its tables to `tables/`"
        if written:
            text += f", including {len(written)} `.tex` file(s) the fit had not written"
        return text + ".\n"
