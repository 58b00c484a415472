"""The agent process: its configuration, the Temporal workers it runs and its CLI."""
