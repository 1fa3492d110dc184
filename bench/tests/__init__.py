"""The benchmarks' own tests: the fleet simulator's pieces and a short end-to-end run."""
