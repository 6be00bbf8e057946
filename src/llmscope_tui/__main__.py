"""`python -m llmscope_tui` runs the same entry point as the `llmscope-tui` command."""

from llmscope_tui.cli import main

raise SystemExit(main())
