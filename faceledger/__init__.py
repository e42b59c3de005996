"""faceledger: a self-hosted face search engine with a ledger."""

__version__ = "0.1.0"
