"""app.text."""
