"""Findings to notifications: rules → alert state (rules.py) → routing, groups, silences,
inhibition (routing.py) → the outbox → receivers (receivers/, one file per kind; outbox.py
delivers)."""
