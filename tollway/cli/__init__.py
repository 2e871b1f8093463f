"""The `tollway` command line (Typer): one module per command group."""
