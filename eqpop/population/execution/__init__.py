"""Running a study: the checks before Ray starts (``preflight``), the driver's loop
(``driver``), its trial table (``table``), the actors (``actor``, ``pool``), typed outcomes and
the rule that decides a trial's fate (``outcome``), and what the console shows (``console``)."""
