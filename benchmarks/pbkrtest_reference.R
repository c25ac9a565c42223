# Golden Kenward-Roger inference for xltstats' mixed models, produced by pbkrtest.
#
# Usage (from the repository root; the same tables and cases as lmertest_reference.R):
#   python benchmarks/lmertest_reference.py /tmp/xlt_lmertest     # tables + cases.json
#   Rscript benchmarks/pbkrtest_reference.R /tmp/xlt_lmertest tests/golden
#
# For every case in cases.json it fits the model with REML in lme4 (pbkrtest refits ML fits with
# REML) and writes into tests/golden/pbkrtest_kenward_roger.json:
#   vcov      lme4's vcov(m), the unadjusted covariance Phi of beta-hat;
#   vcov_adj  pbkrtest's vcovAdj(m), Kenward & Roger's adjusted covariance Phi_A;
#   df        per fixed effect, the KR denominator df of the t test (pbkrtest's Lb_ddf with a unit
#             contrast, what lmerTest's summary(m, ddf = "Kenward-Roger") reports), with the
#             standard error sqrt(diag(Phi_A)), t value and Pr(>|t|);
#   tests     KR F tests (pbkrtest's .KR_adjust, what KRmodcomp reports) of beta = 0 for the
#             contrast matrices "all" (identity) and "slopes" (identity without the intercept);
#   seconds   the elapsed time of vcovAdj(m).
# Optional third and fourth arguments: a comma-separated list of cases, the output file name.
# pbkrtest forms dense n x n matrices: on xpos (6,825 rows) vcovAdj takes 12 minutes per model on
# one loaded core; the golden's "note" says which cases were run how.
for (pkg in c("lme4", "pbkrtest", "jsonlite")) suppressMessages(library(pkg, character.only = TRUE))

given <- commandArgs(trailingOnly = TRUE)
defaults <- c("/tmp/xlt_lmertest", "tests/golden", "", "pbkrtest_kenward_roger.json")
args <- c(given, defaults[seq_along(defaults) > length(given)])
data_dir <- args[1]
out_dir <- args[2]
only <- if (nzchar(args[3])) strsplit(args[3], ",")[[1]] else NULL
cases <- fromJSON(file.path(data_dir, "cases.json"), simplifyVector = FALSE)

read_table <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (g in intersect(c("source", "target", "task"), names(d))) d[[g]] <- factor(d[[g]])
  d
}

kr_test <- function(m, PhiA, L) {
  s <- pbkrtest:::.KR_adjust(PhiA, vcov(m), L, fixef(m), rep(0, length(fixef(m))))
  list(L = L, ndf = s$ndf, ddf = s$ddf, F_scaling = s$F.scaling, F = s$Fstat, p = s$p.value,
       F_unscaled = s$FstatU)
}

out <- list(pbkrtest_version = as.character(packageVersion("pbkrtest")),
            lme4_version = as.character(packageVersion("lme4")),
            R_version = R.version.string, cases = list())
for (case in names(cases)) {
  if (!is.null(only) && !(case %in% only)) next
  spec <- cases[[case]]
  d <- read_table(spec$table)
  m <- suppressMessages(lmer(as.formula(spec$formula), data = d, REML = TRUE))
  t0 <- proc.time()[["elapsed"]]
  PhiA <- vcovAdj(m)
  seconds <- proc.time()[["elapsed"]] - t0
  p <- length(fixef(m))
  V0 <- as.matrix(vcov(m))
  df <- vapply(seq_len(p), function(i) {
    L <- matrix(0, 1, p); L[1, i] <- 1
    Lb_ddf(L, V0, PhiA)
  }, numeric(1))
  se <- sqrt(diag(as.matrix(PhiA)))
  tval <- unname(fixef(m)) / se
  tests <- list(all = kr_test(m, PhiA, diag(p)))
  if (p >= 2) tests$slopes <- kr_test(m, PhiA, diag(p)[-1, , drop = FALSE])
  out$cases[[case]] <- list(
    table = spec$table, formula = spec$formula, isSingular = isSingular(m),
    theta = I(unname(getME(m, "theta"))), sigma = sigma(m), term = I(names(fixef(m))),
    estimate = I(unname(fixef(m))), vcov = unname(V0), vcov_adj = unname(as.matrix(PhiA)),
    se = I(unname(se)), df = I(unname(df)), t = I(tval), p = I(2 * pt(abs(tval), df, lower.tail = FALSE)),
    tests = tests, seconds = seconds)
  cat("fitted", case, sprintf("vcovAdj %.2f s", seconds), "\n")
}
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, matrix = "rowmajor"),
      file.path(out_dir, args[4]))
cat("wrote", args[4], "\n")
