"""mitigations."""
