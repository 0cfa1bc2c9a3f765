"""Benchmarks: synthetic estates (synth) and the `make bench` runner (run)."""
