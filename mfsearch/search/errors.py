class UsageError(Exception):
    """Bad input the user can fix: the CLI prints the one-line message and exits with 2."""
