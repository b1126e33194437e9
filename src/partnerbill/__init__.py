"""partnerbill: a Zuora-compatible billing server where partner accounts take parallel writes."""
