"""Background work: the delivery and sync loops and the HTTP sender they use."""
