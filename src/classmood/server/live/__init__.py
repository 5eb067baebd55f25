"""The live feature of the ClassMood server."""
