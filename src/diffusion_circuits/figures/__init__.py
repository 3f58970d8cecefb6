"""figures subpackage."""
