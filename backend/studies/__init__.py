"""Many runs: sweeps, comparison tables and tuning."""
