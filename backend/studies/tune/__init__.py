"""``wf tune``: Optuna search on validation sessions carved from the train spans."""
