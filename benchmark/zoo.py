"""The model zoo: every SEFL model and baseline, by name and task (DESIGN.md "The zoo").

Importing this module registers every family; each ``benchmark.zoo_entries`` module registers
one group with a few lines per model.
"""

from benchmark.registry import TASKS, create_model, list_models, model_tasks, register_model
from benchmark.zoo_entries import register_all

register_all()

__all__ = ["TASKS", "create_model", "list_models", "model_tasks", "register_model"]
