"""app.conversation."""
