"""Saved runs and what is made from them: run directories, compliance, the
HTML report, comparisons and support bundles."""
