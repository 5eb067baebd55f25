"""ClassMood's tests; the folders mirror ``src/classmood`` (tests/agent for classmood.agent, ...)."""
