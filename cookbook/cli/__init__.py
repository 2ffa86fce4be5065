"""Support for the command-line entry points ``cli.py`` and ``utilscli.py``."""
