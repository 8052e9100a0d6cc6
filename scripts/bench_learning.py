"""The learning bench: expert demos -> main_sft.py -> libero_eval on the tasks' standard init states.

    python -m scripts.bench_learning --help     # the logic: libero_eval/learning_bench.py
"""
from configs.errors import exit_cli
from libero_eval.learning_bench import main

if __name__ == "__main__":
    exit_cli(main)
