"""Intensity windowing, resampling and registration helpers."""
