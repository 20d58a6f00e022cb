"""Watching rollouts: the dashboard and real-time pacing."""
