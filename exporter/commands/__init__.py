"""One-shot subcommands (`parse`, `diagnose`)."""
