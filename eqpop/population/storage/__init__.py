"""The Optuna side of a study: its storage and trials (``store``), every storage call guarded
against the storage going away (``guarded``), which driver runs it (``lease``), and parameter
importances for the reports (``importance``)."""
