"""The observations feature of the ClassMood server."""
