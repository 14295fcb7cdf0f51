"""privacy.experiments."""
