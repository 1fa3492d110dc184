"""Parser stage: one etcd log line → an Event, nothing, or UNPARSED. Pure functions, no I/O."""
