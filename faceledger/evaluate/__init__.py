"""Accuracy evaluation: verification and identification metrics over face embeddings."""
