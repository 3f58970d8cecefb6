"""probe subpackage."""
