"""Client layer: everything that talks to a chain through ape (deployment and the `System`
handle, actors, insurance pools, governance, provider speed-ups). Builds on backstop.core."""
