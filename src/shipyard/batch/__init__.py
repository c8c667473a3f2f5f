"""Many runs at once: ``shipyard batch SUITE``.

A *suite* (``suite.py``) lists tasks; each task becomes a *plan* (``TaskPlan``: everything a
worker needs, with every path resolved), run by an *engine* (``engines.py``: a local pool or
Ray) through ``task.run_task`` — a fresh checkout, ``shipyard run`` in it as a subprocess, a
summary row and the evidence packed. The driver (``driver.py``) writes the rows into one batch
database (``store/batchdb.py``) under ``--out`` and unpacks the evidence beside it.
"""
