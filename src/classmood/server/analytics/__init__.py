"""The analytics feature of the ClassMood server."""
