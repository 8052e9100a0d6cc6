"""RDT as a policy (``rdt_policy.RDTPolicy``) and everything that defines what the model sees and
emits: the LIBERO <-> 128-d mapping, camera slots and history, the batch, conditioning, checkpoints.
Training (``train/``) and evaluation (``libero_eval/``) both stand on it; it imports neither."""
