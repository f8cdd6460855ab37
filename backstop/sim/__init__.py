"""Simulation layer: the reference model / invariant checker of the whole system (model) and
the adversarial agents and scenarios (agents). Builds on backstop.core and backstop.client."""
