"""Ray actors: supervision now; escalation hosts, schedule hosts and dispatchers build on it."""
