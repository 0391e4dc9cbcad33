"""segflow local runtime and command line."""
