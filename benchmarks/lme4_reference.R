# Golden reference values for xltstats' mixed models, produced by lme4.
#
# Usage (from the repository root):
#   python benchmarks/mixed.py export /tmp/xlt_lme4      # tables + cases.json
#   Rscript benchmarks/lme4_reference.R /tmp/xlt_lme4 tests/golden [--no-timings]
#
# For every case in cases.json it fits the model with REML and with ML and writes
# tests/golden/lme4_<case>.json: theta, fixed effects, their standard errors, VarCorr (variances
# and covariances), sigma, logLik, AIC, BIC, REML criterion / deviance, isSingular, and BLUPs of the
# first grouping factor with their conditional variances (condVar).  It also writes lme4_anova.json (likelihood-ratio tests of nested pairs,
# lme4's anova(), which refits with ML), lme4_profile.json (profile-likelihood intervals of the
# standard deviations), lme4_r2.json (Nakagawa R2 from lme4's estimates) and lme4_timings.json (system.time of lmer over repeats,
# minimum elapsed seconds) for the xpos table at 6,825, 54,600 and 491,400 rows.
suppressMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else "/tmp/xlt_lme4"
out_dir <- if (length(args) >= 2) args[2] else "tests/golden"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
cases <- fromJSON(file.path(data_dir, "cases.json"), simplifyVector = FALSE)

read_table <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (g in intersect(c("source", "target", "task"), names(d))) d[[g]] <- factor(d[[g]])
  d
}

describe <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  vc$var1[is.na(vc$var1)] <- ""
  vc$var2[is.na(vc$var2)] <- ""
  re <- ranef(m, condVar = TRUE)
  first <- names(re)[1]
  post <- attr(re[[first]], "postVar")  # k x k x levels conditional covariances of the BLUPs
  list(
    theta = unname(getME(m, "theta")),
    theta_names = names(getME(m, "theta")),
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    varcorr = vc,
    sigma = sigma(m),
    logLik = as.numeric(logLik(m)),
    df = attr(logLik(m), "df"),
    AIC = AIC(m),
    BIC = BIC(m),
    criterion = if (isREML(m)) getME(m, "devcomp")$cmp[["REML"]] else deviance(m),
    isSingular = isSingular(m),
    nobs = nobs(m),
    ranef_group = first,
    ranef_condvar_diag = lapply(seq_len(dim(post)[1]), function(i) post[i, i, ]),
    ranef = lapply(as.list(as.data.frame(re[[first]])), function(v) setNames(as.list(v), rownames(re[[first]])))
  )
}

for (case in names(cases)) {
  spec <- cases[[case]]
  d <- read_table(spec$table)
  f <- as.formula(spec$formula)
  out <- list(case = case, table = spec$table, formula = spec$formula,
              lme4_version = as.character(packageVersion("lme4")),
              R_version = R.version.string)
  out$REML <- describe(suppressMessages(lmer(f, data = d, REML = TRUE)))
  out$ML <- describe(suppressMessages(lmer(f, data = d, REML = FALSE)))
  write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
        file.path(out_dir, paste0("lme4_", case, ".json")))
  cat("wrote", case, "\n")
}

# Likelihood-ratio tests between nested pairs (anova refits REML fits with ML).
anova_pairs <- list(
  three_factor_distance = list(table = "sim_three_factor",
    m0 = "score ~ 1 + (1|source) + (1|target) + (1|task)",
    m1 = "score ~ distance + (1|source) + (1|target) + (1|task)"),
  slopes_random_slope = list(table = "sim_slopes",
    m0 = "score ~ x + (1 | source) + (1 | target)",
    m1 = "score ~ x + (1 + x | source) + (1 | target)")
)
if (file.exists(file.path(data_dir, "xpos.csv"))) {
  anova_pairs$xpos_covariates <- list(table = "xpos",
    m0 = "score ~ 1 + (1|source) + (1|target)",
    m1 = "score ~ same_language + same_script + (1|source) + (1|target)")
}
anova_out <- list()
for (name in names(anova_pairs)) {
  p <- anova_pairs[[name]]
  d <- read_table(p$table)
  m0 <- lmer(as.formula(p$m0), data = d, REML = TRUE)
  m1 <- lmer(as.formula(p$m1), data = d, REML = TRUE)
  a <- as.data.frame(anova(m0, m1))
  anova_out[[name]] <- list(table = p$table, m0 = p$m0, m1 = p$m1, refit_ml = TRUE,
                            npar = a$npar, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik,
                            deviance = a$deviance, Chisq = a$Chisq[2], Df = a$Df[2],
                            p_value = a[["Pr(>Chisq)"]][2])
  a2 <- as.data.frame(anova(m0, m1, refit = FALSE))
  anova_out[[name]]$no_refit <- list(logLik = a2$logLik, Chisq = a2$Chisq[2], Df = a2$Df[2],
                                     p_value = a2[["Pr(>Chisq)"]][2])
}
write(toJSON(anova_out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
      file.path(out_dir, "lme4_anova.json"))
cat("wrote anova\n")

# Profile-likelihood intervals of the standard deviations (confint(method = "profile")).
profile_out <- list()
for (case in intersect(c("sim_three_factor", "sim_singular", "xpos_intercepts"), names(cases))) {
  spec <- cases[[case]]
  d <- read_table(spec$table)
  m <- lmer(as.formula(spec$formula), data = d, REML = TRUE)
  ci <- suppressWarnings(suppressMessages(confint(m, method = "profile", oldNames = FALSE)))
  keep <- grepl("^sd_|^sigma$", rownames(ci))
  profile_out[[case]] <- list(formula = spec$formula, table = spec$table, level = 0.95,
                              parameter = rownames(ci)[keep], lower = unname(ci[keep, 1]),
                              upper = unname(ci[keep, 2]))
}
write(toJSON(profile_out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
      file.path(out_dir, "lme4_profile.json"))
cat("wrote profile\n")

# Nakagawa & Schielzeth (2013) marginal and conditional R2, with Johnson's (2014) mean of
# z_i' Sigma z_i for random slopes, computed here from lme4's estimates (MuMIn's definition).
r2_out <- list()
for (case in intersect(c("sim_three_factor", "sim_slopes", "xpos_covariates"), names(cases))) {
  spec <- cases[[case]]
  d <- read_table(spec$table)
  m <- lmer(as.formula(spec$formula), data = d, REML = TRUE)
  var_fixed <- var(as.vector(model.matrix(m) %*% fixef(m)))
  vc <- VarCorr(m)
  var_random <- 0
  for (g in names(vc)) {
    sigma_g <- as.matrix(vc[[g]])
    z <- sapply(colnames(sigma_g), function(col) if (col == "(Intercept)") rep(1, nrow(d)) else d[[col]])
    z <- matrix(z, nrow = nrow(d))
    var_random <- var_random + mean(rowSums((z %*% sigma_g) * z))
  }
  var_resid <- sigma(m)^2
  total <- var_fixed + var_random + var_resid
  r2_out[[case]] <- list(formula = spec$formula, table = spec$table,
                         var_fixed = var_fixed, var_random = var_random, var_residual = var_resid,
                         r2_marginal = var_fixed / total, r2_conditional = (var_fixed + var_random) / total)
}
write(toJSON(r2_out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
      file.path(out_dir, "lme4_r2.json"))
cat("wrote r2\n")

if ("--no-timings" %in% args) quit(save = "no")

# Timings: minimum elapsed seconds of lmer() over repeats (data already in memory).
timing <- function(d, formula, repeats) {
  f <- as.formula(formula)
  m <- lmer(f, data = d)  # warm-up, and the estimates recorded with the timing
  t <- sapply(seq_len(repeats), function(i) system.time(lmer(f, data = d))[["elapsed"]])
  vc <- as.data.frame(VarCorr(m))
  list(rows = nrow(d), formula = formula, repeats = repeats, seconds = min(t),
       median_seconds = median(t), logLik_REML = as.numeric(logLik(m)),
       fixef = as.list(fixef(m)), variances = as.list(setNames(vc$vcov, vc$grp)))
}
timings <- list(lme4_version = as.character(packageVersion("lme4")))
if (file.exists(file.path(data_dir, "xpos.csv"))) {
  timings$xpos_6825 <- timing(read_table("xpos"), "score ~ 1 + (1|source) + (1|target)", 10)
}
if (file.exists(file.path(data_dir, "xpos_55k.csv"))) {
  timings$xpos_54600 <- timing(read_table("xpos_55k"), "score ~ 1 + (1|source) + (1|target)", 5)
}
if (file.exists(file.path(data_dir, "xpos_500k.csv"))) {
  timings$xpos_491400_tasks <- timing(read_table("xpos_500k"),
                                      "score ~ 1 + (1|source) + (1|target) + (1|task)", 3)
}
write(toJSON(timings, auto_unbox = TRUE, digits = NA, pretty = TRUE),
      file.path(out_dir, "lme4_timings.json"))
cat("wrote timings\n")
