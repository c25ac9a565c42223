# Golden Satterthwaite degrees of freedom for xltstats' mixed models, produced by lmerTest.
#
# Usage (from the repository root):
#   python benchmarks/lmertest_reference.py /tmp/xlt_lmertest     # tables + cases.json
#   Rscript benchmarks/lmertest_reference.R /tmp/xlt_lmertest tests/golden
#
# For every case in cases.json it fits the model with REML in lmerTest (which wraps lme4) and
# writes, per fixed effect, the estimate, standard error, Satterthwaite denominator df, t value
# and Pr(>|t|) of summary(m, ddf = "Satterthwaite") into tests/golden/lmertest_satterthwaite.json.
suppressMessages({
  library(lmerTest)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else "/tmp/xlt_lmertest"
out_dir <- if (length(args) >= 2) args[2] else "tests/golden"
cases <- fromJSON(file.path(data_dir, "cases.json"), simplifyVector = FALSE)

read_table <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (g in intersect(c("source", "target", "task"), names(d))) d[[g]] <- factor(d[[g]])
  d
}

out <- list(lmerTest_version = as.character(packageVersion("lmerTest")),
            lme4_version = as.character(packageVersion("lme4")),
            R_version = R.version.string, cases = list())
profile <- list(lme4_version = out$lme4_version, R_version = out$R_version, cases = list())
for (case in names(cases)) {
  spec <- cases[[case]]
  d <- read_table(spec$table)
  m <- suppressMessages(lmerTest::lmer(as.formula(spec$formula), data = d, REML = TRUE))
  co <- summary(m, ddf = "Satterthwaite")$coefficients
  out$cases[[case]] <- list(
    table = spec$table, formula = spec$formula, isSingular = isSingular(m),
    theta = I(unname(getME(m, "theta"))), sigma = sigma(m),
    term = I(rownames(co)), estimate = I(unname(co[, "Estimate"])), se = I(unname(co[, "Std. Error"])),
    df = I(unname(co[, "df"])), t = I(unname(co[, "t value"])), p = I(unname(co[, "Pr(>|t|)"])))
  t0 <- proc.time()[["elapsed"]]
  ci <- suppressWarnings(suppressMessages(confint(m, parm = "beta_", method = "profile")))
  profile$cases[[case]] <- list(
    table = spec$table, formula = spec$formula, term = I(rownames(ci)),
    lower = I(unname(ci[, 1])), upper = I(unname(ci[, 2])), seconds = proc.time()[["elapsed"]] - t0)
  cat("fitted", case, "\n")
}
write(toJSON(profile, auto_unbox = TRUE, digits = NA, pretty = TRUE),
      file.path(out_dir, "lme4_profile_fixed.json"))
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
      file.path(out_dir, "lmertest_satterthwaite.json"))
cat("wrote lmertest_satterthwaite.json\n")
