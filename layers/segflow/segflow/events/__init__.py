"""Event contracts (pydantic models of each detail-type) and the bus port."""
