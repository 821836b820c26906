"""Adaptation methods as plugins: a registry, the method interface, and the built-in methods."""
