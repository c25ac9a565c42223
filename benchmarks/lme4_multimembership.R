# Golden values for xltstats' multi-membership random effect (1 | mm(source, target)), from lme4.
#
# Usage (from the repository root):
#   Rscript benchmarks/lme4_multimembership.R tests/golden/lme4_data_mm_pairs.csv tests/golden/lme4mm_pairs.json
#
# lme4 has no multi-membership syntax; its users build the model by hand (lme4's "modular"
# functions, ?modular): lFormula on a dummy factor `language` that has every language as a level,
# then the language rows of Zt are replaced by the multi-membership Zt (1 in the rows of the
# pair's source and target languages; 2 where they are the same language), then mkLmerDevfun,
# optimizeLmer and mkMerMod.  The table (24 languages, all 276 unordered pairs in 3 tasks, plus 6
# same-language rows) was drawn by xltstats.models.simulate.UnorderedSimulator (seed 7; see
# tests/test_mixed_multimembership.py).  Written for each model, REML and ML: theta, fixed
# effects and their standard errors, variances, sigma, logLik, AIC, BIC, the criterion, and the
# language BLUPs with their conditional variances.
suppressMessages({
  library(lme4)
  library(Matrix)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "tests/golden/lme4_data_mm_pairs.csv"
out <- if (length(args) >= 2) args[2] else "tests/golden/lme4mm_pairs.json"
d <- read.csv(csv, stringsAsFactors = FALSE)
langs <- sort(unique(c(d$source, d$target)))
# the dummy: every language a level (the rows it assigns are replaced below)
d$language <- factor(langs[(seq_len(nrow(d)) - 1) %% length(langs) + 1], levels = langs)
d$task <- factor(d$task)

mm_zt <- function(d) {  # languages x rows; duplicate (i, j) entries are summed (weight 2)
  sparseMatrix(i = c(match(d$source, langs), match(d$target, langs)),
               j = rep(seq_len(nrow(d)), 2), x = 1, dims = c(length(langs), nrow(d)))
}

fit_mm <- function(formula, REML) {
  lf <- lFormula(formula, data = d, REML = REML)
  k <- which(names(lf$reTrms$cnms) == "language")  # lme4 orders the terms by their number of levels
  Gp <- lf$reTrms$Gp
  rows <- (Gp[k] + 1):Gp[k + 1]
  Zt <- lf$reTrms$Zt
  Zt[rows, ] <- mm_zt(d)
  lf$reTrms$Zt <- as(Zt, "CsparseMatrix")
  lf$reTrms$Ztlist[[k]] <- mm_zt(d)
  devfun <- do.call(mkLmerDevfun, lf)
  opt <- optimizeLmer(devfun, control = list(ftol_abs = 1e-12, xtol_abs = 1e-10))
  mkMerMod(environment(devfun), opt, lf$reTrms, fr = lf$fr)
}

describe <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  re <- ranef(m, condVar = TRUE)
  post <- attr(re$language, "postVar")
  list(
    theta = unname(getME(m, "theta")),
    theta_names = names(getME(m, "theta")),
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    variance = setNames(as.list(vc$vcov), vc$grp),
    sigma = sigma(m),
    logLik = as.numeric(logLik(m)),
    AIC = AIC(m),
    BIC = BIC(m),
    criterion = if (isREML(m)) getME(m, "devcomp")$cmp[["REML"]] else deviance(m),
    nobs = nobs(m),
    ranef = setNames(as.list(re$language[, 1]), rownames(re$language)),
    ranef_condvar = setNames(as.list(post[1, 1, ]), rownames(re$language))
  )
}

models <- list(
  language = list(lme4 = score ~ x + z + (1 | language), ours = "score ~ x + z + (1 | mm(source, target))"),
  language_task = list(lme4 = score ~ x + z + (1 | language) + (1 | task),
                       ours = "score ~ x + z + (1 | mm(source, target)) + (1 | task)")
)
gold <- list(table = basename(csv), lme4 = as.character(packageVersion("lme4")), R = R.version.string,
             models = list())
for (name in names(models)) {
  spec <- models[[name]]
  gold$models[[name]] <- list(formula = spec$ours,
                              REML = describe(fit_mm(spec$lme4, TRUE)),
                              ML = describe(fit_mm(spec$lme4, FALSE)))
}
writeLines(toJSON(gold, auto_unbox = TRUE, digits = NA, pretty = TRUE), out)
cat("wrote", out, "\n")
