"""Persistence: ORM models (`models`) and engines/sessions/migrations (`session`)."""
