"""Tests of classmood.vision: detector, classifier, tracking, video, reports."""
