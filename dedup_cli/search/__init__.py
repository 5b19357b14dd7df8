"""Pairs of hashes within a threshold: the exact engines and the thresholds. Knows nothing about files."""
