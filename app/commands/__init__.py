"""CLI command groups: one module per area, each with a register(root) function (see app/cli.py)."""
