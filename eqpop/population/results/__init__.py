"""What a study writes besides its Optuna storage: the Parquet datasets (``dataset``,
``writer``), the driver's side of them and the JSON files (``sink``), and ``eqpop compact
--repair`` (``repair``)."""
