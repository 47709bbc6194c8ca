"""The method interface, the registry, shared building blocks and one file per method."""
