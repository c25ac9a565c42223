"""Report templates shipped with xltstats (``report.qmd``); a package so they ship as package data."""
