# Golden values of the logit-scale mixed model (xltstats.models.bounded), produced by lme4.
#
# Usage (from the repository root):
#   python benchmarks/logit_mixed.py export
#   Rscript benchmarks/logit_mixed_reference.R tests/golden
#
# Reads logit_data_sim_bounded.csv (scores in percent, range 0-100) and the rows to predict,
# squeezes and logit-transforms the scores here (Smithson & Verkuilen 2006:
# p' = (p (n - 1) + 1/2) / n), fits lmer with REML, and writes logit_lme4_sim_bounded.json: theta,
# fixed effects and their SEs, variance components, sigma, logLik, and for the new rows the
# linear predictor (with the BLUPs of seen levels), its prediction variance
# x'V x + sigma^2 + condVar of a seen level (or the term's variance for an unseen one), and the
# 95% interval bounds transformed back to the score scale and clipped to 0-100.
suppressMessages({
  library(lme4)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args) >= 1) args[1] else "tests/golden"
d <- read.csv(file.path(dir, "logit_data_sim_bounded.csv"), stringsAsFactors = FALSE)
new <- read.csv(file.path(dir, "logit_newdata_sim_bounded.csv"), stringsAsFactors = FALSE)
low <- 0; high <- 100; n <- nrow(d)
squeeze <- function(y) ((y - low) / (high - low) * (n - 1) + 0.5) / n
unsqueeze <- function(p) pmin(pmax(low + (high - low) * (n * p - 0.5) / (n - 1), low), high)
d$logit_score <- qlogis(squeeze(d$score))
m <- lmer(logit_score ~ x1 + x2 + (1 | source) + (1 | target), data = d, REML = TRUE)

X <- model.matrix(~ x1 + x2, new)
eta <- as.vector(X %*% fixef(m))
var <- rowSums((X %*% as.matrix(vcov(m))) * X) + sigma(m)^2
re <- ranef(m, condVar = TRUE)
vc <- VarCorr(m)
for (g in c("source", "target")) {
  blup <- re[[g]][, 1]
  names(blup) <- rownames(re[[g]])
  post <- attr(re[[g]], "postVar")[1, 1, ]
  names(post) <- rownames(re[[g]])
  seen <- new[[g]] %in% names(blup)
  eta[seen] <- eta[seen] + blup[new[[g]][seen]]
  var <- var + ifelse(seen, post[new[[g]]], as.numeric(vc[[g]][1, 1]))
}
z <- qnorm(0.975)
out <- list(
  formula = "logit_score ~ x1 + x2 + (1 | source) + (1 | target)", low = low, high = high, n = n,
  lme4_version = as.character(packageVersion("lme4")), R_version = R.version.string,
  theta = unname(getME(m, "theta")), fixef = as.list(fixef(m)),
  se = as.list(sqrt(diag(as.matrix(vcov(m))))),
  varcorr = as.data.frame(vc)[, c("grp", "vcov")], sigma = sigma(m),
  logLik = as.numeric(logLik(m)),
  logit_response_head = head(d$logit_score, 5),
  new_eta = eta, new_var = unname(var),
  new_prediction = unsqueeze(plogis(eta)),
  new_lower = unsqueeze(plogis(eta - z * sqrt(var))),
  new_upper = unsqueeze(plogis(eta + z * sqrt(var)))
)
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(dir, "logit_lme4_sim_bounded.json"))
cat("wrote", file.path(dir, "logit_lme4_sim_bounded.json"), "\n")
