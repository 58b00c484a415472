"""Execution on Temporal: the run and job workflows, the activities and the client side."""
