"""What turns observations into the runner's inputs and finds a run's checkpoints: shared by
training (``train/``) and evaluation (``libero_eval/``), importing neither."""
