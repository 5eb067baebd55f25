"""Training-side code of ClassMood (PyTorch). The server never imports this package."""
