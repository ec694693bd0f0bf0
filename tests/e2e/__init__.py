"""End-to-end tests: the real production app driven through a real browser."""
