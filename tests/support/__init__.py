"""Helpers shared by test packages (running the real app, ...)."""
