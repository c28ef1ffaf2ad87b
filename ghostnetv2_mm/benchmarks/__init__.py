"""Benchmark library code: timing and profiling helpers used by tools/analysis."""
