"""Source stage: follow a log (file, command, Kubernetes pod log) and hand lines to the parser."""
