"""Tests of classmood.benchmarks: small runs of every benchmark, checked for what they count."""
