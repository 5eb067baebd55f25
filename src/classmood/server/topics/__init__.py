"""Lesson topics: what the teacher was teaching when, and the class's figures per topic."""
