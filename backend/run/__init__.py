"""One run: the driver, Window Setup, window tasks, executors, the run folder, provenance, seeds, replay."""
