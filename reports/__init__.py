"""reports: the paper's tables, plots and a leaderboard page, regenerated from MLflow runs.

Entry point: ``python -m reports.generate --suite <name>`` (``reports.generate.build_report``
from Python; not imported here so that ``-m`` runs the module fresh).
"""

from reports.load import ReportInputError, SuiteRuns, load_history, load_suite
from reports.published import published_model_map, published_results
from reports.reproduction import reproduction_frame
from reports.tables import ResultTable, data_efficiency_table, summary_table

__all__ = [
    "ReportInputError",
    "ResultTable",
    "SuiteRuns",
    "data_efficiency_table",
    "load_history",
    "load_suite",
    "published_model_map",
    "published_results",
    "reproduction_frame",
    "summary_table",
]
