"""What the pages read, as frozen values: one module per area (system, market data)."""
