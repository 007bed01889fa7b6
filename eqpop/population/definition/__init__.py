"""What a study is: its typed definition (``spec``) and the studies eqpop ships (``builtin``).
No Ray or Optuna here, so that a study is checked before either starts."""
