"""Ingest: read dropped files, map columns, validate and normalise rows, quarantine the bad ones.

Modules: datasets (what each dataset contains), columns + aliases.yaml (header mapping), reader (bytes to
raw string chunks), cleaning (raw chunks to typed clean rows, quarantine and warnings), normalise / dates /
money / contact / countries / vocab (value parsers), quarantine (reasons), csv_safe (CSV written for people).
"""
