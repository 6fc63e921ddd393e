"""The ``mmlab`` command and what serves it: the subcommand table (cli), ``mmlab lab`` (jupyter),
``mmlab doctor``, ``mmlab export`` and the project's pytest plugin."""
