"""The accounts feature of the ClassMood server."""
