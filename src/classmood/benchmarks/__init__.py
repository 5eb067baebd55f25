"""Benchmarks that print figures and ratios against peers (run them in .venv-bench, see bench/)."""
