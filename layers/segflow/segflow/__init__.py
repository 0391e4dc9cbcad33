"""segflow: the domain library shipped as a Lambda layer."""
