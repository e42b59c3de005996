"""Oversight reports (how the system was used, misuse signals) and data-subject reports."""
