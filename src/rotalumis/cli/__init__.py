"""L5: the ``rotalumis`` command-line interface (Typer)."""
