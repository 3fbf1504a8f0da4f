"""Training pipeline (torch / stable-baselines3 are imported lazily, never on the dry-run path)."""
