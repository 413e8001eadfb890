"""Versions as they are kept and read back: an AP snapshot merged race by race and stored as
its change (with a whole checkpoint now and then), and each version's reading held in memory so
a payload is parsed once."""
