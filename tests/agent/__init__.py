"""Tests of classmood.agent: the headless client that sends a video's scores to a class."""
