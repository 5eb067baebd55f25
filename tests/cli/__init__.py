"""Tests of the classmood command line (classmood.cli)."""
