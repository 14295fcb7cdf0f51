"""app.ops."""
