"""netlab's public Python API, one module per job; the names users import are re-exported, lazily,
by the ``netlab`` package itself (``netlab.up``, ``netlab.validate``...). See docs/api.md.

- :mod:`~netlab.api.scenarios`: load and validate a scenario file (errors as data);
- :mod:`~netlab.api.lab`: bring a lab up, attach to a live one, use it, take it down;
- :mod:`~netlab.api.status` and :mod:`~netlab.api.listing`: a live lab's state, whole or by kind;
- :mod:`~netlab.api.results`: check results as a list that knows whether it passed;
- :mod:`~netlab.api.junit`: results as JUnit XML for CI.

The command line and the pytest plugin are written against these modules only.
"""
