"""Search: the engine-level face search (this package) and, on top, the accountable service."""
