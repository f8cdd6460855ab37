"""Backstop's Python toolchain: deployment, order signing, models, simulation, keeper logic."""
