"""Evaluation: metrics with label mapping by name, reports, confusion matrices, training curves, t-SNE."""

from ferkit.evaluation.api import evaluate_checkpoint
from ferkit.evaluation.metrics import confusion_matrix, per_class, summarize
from ferkit.evaluation.report import evaluate, per_class_table, write_report
from ferkit.evaluation.runner import LabelMap, label_map, predict, score

__all__ = ["evaluate", "evaluate_checkpoint", "write_report", "per_class_table", "confusion_matrix", "summarize",
           "per_class", "label_map", "LabelMap", "predict", "score"]
