"""The courses feature of the ClassMood server."""
