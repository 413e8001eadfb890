"""Results as newsrooms load them: an AP snapshot as elex's ``results`` rows (and CSV)."""
