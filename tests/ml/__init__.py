"""Tests of classmood.ml: datasets, training, export, quantisation."""
