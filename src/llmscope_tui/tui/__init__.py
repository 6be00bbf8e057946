"""The Textual face: the only package that imports textual (see docs/development.md for its modules)."""
