"""Reporting layer: rich tables (display), gas and code-size reports. Builds on backstop.core."""
