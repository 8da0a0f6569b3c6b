"""Findings to notifications: rules → alert state → outbox → webhook senders."""
