"""The sessions feature of the ClassMood server."""
