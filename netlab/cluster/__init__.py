"""The control plane in miniature: IPAM, placement, controllers; pure, no kernel."""
