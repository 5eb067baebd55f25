"""What ClassMood writes for other programs to read: the rules every export shares."""
